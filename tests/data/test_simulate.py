"""Tests of the EEG simulator: structure, determinism, planted effects, artefacts, config."""

from __future__ import annotations

import json

import mne
import numpy as np
import pytest
from pydantic import ValidationError
from scipy.signal import welch

from eegcrp.config import (
    SIMULATED_CHANNEL_PRESETS,
    SIMULATED_CLASSES,
    ConfigError,
    SimulatedConfig,
    load_config,
)
from eegcrp.data import DataError, EEGDataset, get_loader
from eegcrp.data.simulate import (
    CHANNEL_PRESETS,
    GroundTruth,
    SimulatedLoader,
    baseline_accuracy,
    dipole_potentials,
    resolve_channels,
    simulate,
)

FAST = {"n_subjects": 3, "n_trials": 12, "channels": "10-20_19"}


def cfg(**kwargs) -> SimulatedConfig:
    return SimulatedConfig(**{**FAST, **kwargs})


def band_logpower(
    ep: mne.BaseEpochs, channel: str, band: tuple[float, float], window=(0.5, 3.5)
) -> np.ndarray:
    """Log band power of one channel per trial within a time window (Welch)."""
    sfreq = ep.info["sfreq"]
    x = ep.get_data(picks=[channel])[:, 0, int(window[0] * sfreq):int(window[1] * sfreq)]
    freqs, psd = welch(x, fs=sfreq, nperseg=int(sfreq), axis=-1)
    sel = (freqs >= band[0]) & (freqs <= band[1])
    return np.log(psd[:, sel].mean(axis=1))


def class_mask(ep: mne.BaseEpochs, name: str) -> np.ndarray:
    return ep.events[:, 2] == ep.event_id[name]


def class_difference(ds: EEGDataset, feature, cls_a: str, cls_b: str) -> dict[str, float]:
    """Per subject: mean feature in class a minus mean in class b."""
    out = {}
    for subject, ep in ds:
        values = feature(ep)
        out[subject] = float(values[class_mask(ep, cls_a)].mean()
                             - values[class_mask(ep, cls_b)].mean())
    return out


# --------------------------------------------------------------------------- structure
def test_dataset_structure_and_units():
    ds, gt = simulate(cfg())
    assert isinstance(ds, EEGDataset)
    assert ds.name == "simulated" and ds.task == "motor_imagery" and ds.mains_freq == 50.0
    assert ds.subjects == ["S01", "S02", "S03"]
    assert ds.classes == ["left_hand", "right_hand"]
    assert ds.ch_names == list(CHANNEL_PRESETS["10-20_19"])
    assert ds.sfreq == 256.0 and ds.n_times == 1024
    ds.validate()
    summary = ds.summary()
    assert (summary["left_hand"] == 6).all() and (summary["right_hand"] == 6).all()
    for subject, ep in ds:
        assert ep.get_montage() is not None
        assert set(ep.metadata["subject"]) == {subject}
        assert {"trial", "blinks", "saccades", "muscle_bursts"} <= set(ep.metadata)
        assert ep.info["line_freq"] == 50.0
    X, _, _ = ds.get_data()
    rms_uv = X.std() * 1e6
    assert 5 < rms_uv < 60, rms_uv  # volts, tens of µV
    # ground truth travels with the dataset, as JSON
    text = json.dumps(ds.info["ground_truth"])
    assert GroundTruth.from_dict(json.loads(text)) == gt
    assert gt.to_dict() == ds.info["ground_truth"]
    assert simulate(cfg(), return_ground_truth=False).subjects == ds.subjects


def test_ground_truth_motor_imagery():
    _, gt = simulate(SimulatedConfig(n_subjects=10, n_trials=4))
    assert gt.paradigm == "motor_imagery" and gt.classes == ["left_hand", "right_hand"]
    assert len(gt.ch_names) == 64 and gt.time_window == [0.5, 3.5]
    (contrast,) = gt.contrasts
    effects = {e.name: e for e in contrast.effects}
    assert set(effects) == {"mu_left", "mu_right", "beta_left", "beta_right"}
    mu_right = effects["mu_right"]
    assert mu_right.peak_channel == "C4" and "C4" in mu_right.channels
    assert "C3" not in mu_right.channels
    assert mu_right.band == [8.0, 12.0] and effects["beta_right"].band == [18.0, 26.0]
    assert mu_right.power_ratio == {"left_hand": 0.5, "right_hand": 1.0}
    assert mu_right.higher_in == "right_hand"
    assert mu_right.sign == {"left_hand": -1, "right_hand": 1}
    assert effects["mu_left"].peak_channel == "C3" and effects["mu_left"].higher_in == "left_hand"
    weights = gt.channel_weights()
    assert max(weights, key=weights.get) in {"C3", "C4"} and weights["Oz"] < 0.2
    assert contrast.bands == [[8.0, 12.0], [18.0, 26.0]]
    arts = {a.name: a for a in gt.artifacts}
    assert set(arts) == {"blink", "saccade", "muscle_left", "muscle_right"}
    assert {"Fp1", "Fp2"} <= set(arts["blink"].channels)
    assert arts["muscle_left"].peak_channel == "T7" and arts["muscle_right"].peak_channel == "T8"
    assert all(a.confounded_with is None for a in arts.values())
    assert len(arts["blink"].pattern) == 64
    # an exact fraction of weak subjects, with weak effects
    weak = [s for s in gt.subjects.values() if s.weak]
    assert len(weak) == 2 and all(s.effect_scale <= 0.25 for s in weak)
    alpha = [s.peak_freqs["alpha"] for s in gt.subjects.values()]
    assert min(alpha) >= 8.5 and max(alpha) <= 12.0 and np.std(alpha) > 0.3


def test_ground_truth_other_paradigms_and_no_effect():
    _, gt = simulate(cfg(paradigm="auditory_attention", channels="standard_64"))
    effects = {e.name: e for e in gt.contrasts[0].effects}
    assert effects["alpha_left"].higher_in == "left_ear"
    assert effects["alpha_left"].peak_channel == "PO7"
    assert effects["alpha_right"].higher_in == "right_ear"
    _, gt = simulate(cfg(paradigm="internal_attention", effect_size=0))
    effects = {e.name: e for e in gt.contrasts[0].effects}
    assert set(effects) == {"alpha_posterior", "theta_frontal"}
    assert effects["theta_frontal"].band == [4.0, 8.0]
    assert effects["theta_frontal"].peak_channel == "Fz"
    assert all(e.higher_in is None for e in effects.values())
    assert all(s.effect_size == 0 for s in gt.subjects.values())


# --------------------------------------------------------------------------- determinism
def test_same_seed_identical_different_seed_different():
    a, _ = simulate(cfg(seed=7))
    b, _ = simulate(cfg(seed=7))
    c, _ = simulate(cfg(seed=8))
    xa, xb, xc = a.get_data()[0], b.get_data()[0], c.get_data()[0]
    assert xa.tobytes() == xb.tobytes()
    for subject in a.subjects:
        assert np.array_equal(a[subject].get_data(), b[subject].get_data())
        assert a[subject].metadata.equals(b[subject].metadata)
    assert not np.allclose(xa, xc)
    # subjects differ from each other too
    assert not np.allclose(a["S01"].get_data(), a["S02"].get_data())


def test_one_subject_alone_is_byte_identical():
    full, gt_full = simulate(cfg(seed=3))
    alone, gt_alone = simulate(cfg(seed=3, subjects=[2]))
    assert alone.subjects == ["S02"]
    assert alone["S02"].get_data().tobytes() == full["S02"].get_data().tobytes()
    assert gt_alone.subjects["S02"] == gt_full.subjects["S02"]
    loader = SimulatedLoader(cfg(seed=3))
    assert loader.load_subject("S03").get_data().tobytes() == full["S03"].get_data().tobytes()


def test_seed_none_is_zero_outside_a_study():
    assert SimulatedConfig().seed is None
    small = {"n_subjects": 2, "n_trials": 4}
    none, _ = simulate(cfg(seed=None, **small))
    zero, _ = simulate(cfg(seed=0, **small))
    one, _ = simulate(cfg(seed=1, **small))
    assert none["S02"].get_data().tobytes() == zero["S02"].get_data().tobytes()
    assert not np.allclose(none["S02"].get_data(), one["S02"].get_data())


# --------------------------------------------------------------------------- continuity
def test_each_subject_is_one_continuous_recording_with_margins():
    loader = SimulatedLoader(cfg(margin=3.0))
    rec = loader.load_recording("S02")
    assert len(rec.segments) == 1 and not rec.epoched and rec.duration == 4.0
    x = rec.segments[0].get_data()
    assert x.shape == (19, (2 * 3 + 12 * 4) * 256)
    np.testing.assert_allclose(rec.trials["onset"], 3.0 + 4.0 * np.arange(12))
    assert rec.segments[0].info["line_freq"] == 50.0 and rec.segments[0].get_montage()
    # the raw trials are cuts of it
    ep = loader.load_subject("S02")
    np.testing.assert_array_equal(ep.get_data()[5], x[:, (3 + 20) * 256:(3 + 24) * 256])
    assert ep.metadata["trial_onset"].tolist()[:2] == [3.0, 7.0]
    # the margins hold the same kind of signal: real context for filters, not padding
    ratio = x[:, :3 * 256].std() / x[:, 3 * 256:-3 * 256].std()
    assert 0.5 < ratio < 2.0, ratio
    # and trials join without a step: the sample-to-sample change there is as elsewhere
    steps = np.abs(np.diff(x, axis=1)).mean(axis=0)
    joins = (3 + 4 * np.arange(1, 12)) * 256 - 1
    assert steps[joins].mean() < 1.5 * steps.mean()


def test_switching_a_component_off_changes_only_that_component():
    with_blinks, gt = simulate(cfg(blink_rate=1.0, saccade_rate=0, muscle_rate=0))
    without, _ = simulate(cfg(blink_rate=0.0, saccade_rate=0, muscle_rate=0))
    diff = with_blinks["S01"].get_data() - without["S01"].get_data()
    blink_pattern = np.array(next(a for a in gt.artifacts if a.name == "blink").pattern)
    # the difference is the blink source alone: rank one, with (about) the nominal pattern
    singular = np.linalg.svd(np.moveaxis(diff, 1, 0).reshape(len(blink_pattern), -1),
                             compute_uv=False)
    assert singular[1] < 1e-9 * singular[0]
    rms = np.sqrt((diff**2).mean(axis=(0, 2)))
    assert np.corrcoef(rms, np.abs(blink_pattern))[0, 1] > 0.95
    top = [with_blinks.ch_names[i] for i in np.argsort(-rms)[:2]]
    assert set(top) == {"Fp1", "Fp2"}


# --------------------------------------------------------------------------- effects
@pytest.fixture(scope="module")
def mi_c3c4() -> EEGDataset:
    ds, _ = simulate(SimulatedConfig(n_subjects=6, n_trials=40, channels="c3cz_c4",
                                     weak_fraction=0, seed=11))
    return ds


def test_motor_imagery_contralateral_mu_desynchronisation(mi_c3c4):
    assert mi_c3c4.ch_names == ["C3", "Cz", "C4"]

    def lateral_mu(ep):  # log mu power C4 - C3
        return band_logpower(ep, "C4", (8, 12)) - band_logpower(ep, "C3", (8, 12))

    # left-hand imagery lowers mu over C4: C4 - C3 is larger for right-hand imagery
    diffs = class_difference(mi_c3c4, lateral_mu, "right_hand", "left_hand")
    assert sum(d > 0 for d in diffs.values()) >= 5, diffs
    assert np.mean(list(diffs.values())) > 0.3

    def lateral_beta(ep):
        return band_logpower(ep, "C4", (18, 26)) - band_logpower(ep, "C3", (18, 26))

    diffs = class_difference(mi_c3c4, lateral_beta, "right_hand", "left_hand")
    assert sum(d > 0 for d in diffs.values()) >= 5, diffs


def test_effect_is_confined_to_its_time_window():
    ds, _ = simulate(cfg(channels=["C3", "C4"], effect_window=(2.0, 4.0), effect_size=3.0,
                         n_trials=30, weak_fraction=0, variability=0))

    def c4_mu(window):
        return lambda ep: band_logpower(ep, "C4", (8, 12), window)

    inside = class_difference(ds, c4_mu((2.0, 4.0)), "right_hand", "left_hand")
    before = class_difference(ds, c4_mu((0.0, 1.75)), "right_hand", "left_hand")
    assert np.mean(list(inside.values())) > 0.8
    assert abs(np.mean(list(before.values()))) < 0.3


def test_auditory_attention_ipsilateral_alpha():
    ds, _ = simulate(SimulatedConfig(paradigm="auditory_attention", n_subjects=6, n_trials=40,
                                     channels=["PO7", "PO8", "Pz", "Oz", "Cz", "Fz"],
                                     weak_fraction=0, seed=5))

    def lateral_alpha(ep):  # left minus right hemisphere
        return band_logpower(ep, "PO7", (8, 12)) - band_logpower(ep, "PO8", (8, 12))

    diffs = class_difference(ds, lateral_alpha, "left_ear", "right_ear")
    assert sum(d > 0 for d in diffs.values()) >= 5, diffs


def test_internal_attention_alpha_and_theta():
    ds, _ = simulate(SimulatedConfig(paradigm="internal_attention", n_subjects=6, n_trials=40,
                                     channels="10-20_19", weak_fraction=0, seed=5))
    alpha = class_difference(ds, lambda ep: band_logpower(ep, "Pz", (8, 12)),
                             "internal", "external")
    theta = class_difference(ds, lambda ep: band_logpower(ep, "Fz", (4, 8)),
                             "internal", "external")
    assert sum(d > 0 for d in alpha.values()) >= 5, alpha
    assert sum(d > 0 for d in theta.values()) >= 5, theta


def test_background_is_one_over_f():
    ds, gt = simulate(cfg(n_trials=20))
    for subject, ep in ds:
        freqs, psd = welch(ep.get_data(), fs=ep.info["sfreq"], nperseg=256, axis=-1)
        psd = psd.mean(axis=(0, 1))
        sel = (freqs >= 2) & (freqs <= 40) & ~((freqs >= 7) & (freqs <= 14)) \
            & ~((freqs >= 17) & (freqs <= 27))
        slope = np.polyfit(np.log(freqs[sel]), np.log(psd[sel]), 1)[0]
        assert -2.5 < slope < -0.5, (subject, slope)
        assert abs(slope + gt.subjects[subject].aperiodic_exponent) < 0.4
        # line noise at the configured mains frequency
        line = psd[np.argmin(np.abs(freqs - 50))]
        assert line > 3 * np.median(psd[(freqs > 40) & (freqs < 60) & (np.abs(freqs - 50) > 2)])


def test_mains_frequency_from_config():
    ds, gt = simulate(cfg(mains_freq=60.0, n_subjects=1, n_trials=6))
    assert ds.mains_freq == 60.0 and gt.mains_freq == 60.0
    freqs, psd = welch(ds["S01"].get_data(), fs=256, nperseg=256, axis=-1)
    psd = psd.mean(axis=(0, 1))
    assert psd[freqs == 60][0] > 3 * psd[freqs == 50][0]


# --------------------------------------------------------------------------- artefacts
def test_blinks_dominate_frontal_low_frequencies():
    ds, _ = simulate(cfg(blink_rate=0.5, saccade_rate=0, muscle_rate=0, channels="standard_64"))
    X, _, _ = ds.get_data()
    freqs, psd = welch(X, fs=ds.sfreq, nperseg=256, axis=-1)
    low = psd[..., (freqs >= 0.5) & (freqs <= 4)].mean(axis=(0, 2))
    ch = ds.ch_names
    frontal = np.mean([low[ch.index(c)] for c in ("Fp1", "Fpz", "Fp2")])
    posterior = np.mean([low[ch.index(c)] for c in ("Oz", "O1", "O2", "Pz")])
    assert frontal > 4 * posterior


def test_muscle_dominates_temporal_high_frequencies():
    ds, _ = simulate(cfg(muscle_rate=1.0, blink_rate=0, saccade_rate=0))
    X, _, _ = ds.get_data()
    freqs, psd = welch(X, fs=ds.sfreq, nperseg=256, axis=-1)
    high = psd[..., (freqs >= 25) & (freqs <= 45)].mean(axis=(0, 2))
    ch = ds.ch_names
    assert min(high[ch.index("T7")], high[ch.index("T8")]) > 4 * high[ch.index("Cz")]
    quiet, _ = simulate(cfg(muscle_rate=0, blink_rate=0, saccade_rate=0))
    _, psd_q = welch(quiet.get_data()[0], fs=ds.sfreq, nperseg=256, axis=-1)
    high_q = psd_q[..., (freqs >= 25) & (freqs <= 45)].mean(axis=(0, 2))
    assert high_q[ch.index("T7")] < 2 * high_q[ch.index("Cz")]


def test_confound_makes_artifact_class_dependent():
    confound = {"artifact": "blink", "class": "left_hand", "strength": 3.0}
    ds, gt = simulate(SimulatedConfig(n_subjects=5, n_trials=40, channels="10-20_19",
                                      effect_size=0, blink_rate=0.3, confound=confound))
    blink = next(a for a in gt.artifacts if a.kind == "blink")
    assert blink.confounded_with == "left_hand" and blink.confound_strength == 3.0
    assert blink.rate_hz == {"left_hand": pytest.approx(1.2), "right_hand": pytest.approx(0.3)}
    assert all(a.confounded_with is None for a in gt.artifacts if a.kind != "blink")
    blinks = {c: [] for c in ds.classes}
    for _, ep in ds:
        for c in ds.classes:
            blinks[c].extend(ep.metadata["blinks"][class_mask(ep, c)])
    assert np.mean(blinks["left_hand"]) > 2.5 * np.mean(blinks["right_hand"])
    # a model can cheat through the confound: frontal delta separates the classes ...
    assert baseline_accuracy(ds, (1, 4)) > 0.65
    # ... and without it there is nothing to find
    clean, _ = simulate(SimulatedConfig(n_subjects=5, n_trials=40, channels="10-20_19",
                                        effect_size=0, blink_rate=0.3))
    assert abs(baseline_accuracy(clean, (1, 4)) - 0.5) < 0.12


# --------------------------------------------------------------------------- baseline
BASELINE_BANDS = {
    "motor_imagery": [(8, 12), (18, 26)],
    "auditory_attention": [(8, 12)],
    "internal_attention": [(4, 8), (8, 12)],
}


@pytest.mark.parametrize("paradigm", sorted(BASELINE_BANDS))
def test_baseline_above_chance_only_with_effect(paradigm):
    base = {"paradigm": paradigm, "n_subjects": 6, "n_trials": 40, "channels": "actichamp_32"}
    ds, _ = simulate(SimulatedConfig(**base))
    accuracy = baseline_accuracy(ds, BASELINE_BANDS[paradigm])
    assert accuracy > 0.6, accuracy
    per_subject = baseline_accuracy(ds, BASELINE_BANDS[paradigm], per_subject=True)
    assert set(per_subject) == set(ds.subjects)
    null, _ = simulate(SimulatedConfig(**base, effect_size=0))
    chance = baseline_accuracy(null, BASELINE_BANDS[paradigm])
    assert abs(chance - 0.5) < 0.12, chance


# --------------------------------------------------------------------------- channels
def test_channel_presets():
    assert set(CHANNEL_PRESETS) == set(SIMULATED_CHANNEL_PRESETS)
    sizes = {name: len(chs) for name, chs in CHANNEL_PRESETS.items()}
    assert sizes == {"standard_64": 64, "actichamp_32": 32, "10-20_19": 19, "c3cz_c4": 3}
    for name, chs in CHANNEL_PRESETS.items():
        assert len(set(chs)) == len(chs)
        assert resolve_channels(name) == list(chs)
    assert resolve_channels(["c3", "CZ", "po7"]) == ["C3", "Cz", "PO7"]
    ds, gt = simulate(cfg(channels=["cz", "FCz", "C3"], n_subjects=2, n_trials=4))
    assert ds.ch_names == ["Cz", "FCz", "C3"] == gt.ch_names


def test_bad_channels_raise_data_error_naming_the_fix():
    with pytest.raises(DataError, match=r"\['C99'\].*10-05.*preset"):
        simulate(cfg(channels=["C3", "C99"]))
    with pytest.raises(DataError, match="twice"):
        resolve_channels(["C3", "c3"])
    with pytest.raises(DataError, match="unknown channel preset"):
        resolve_channels("standard_128")
    with pytest.raises(ValidationError, match="standard_64"):
        SimulatedConfig(channels="standard_128")


# --------------------------------------------------------------------------- config
def test_config_errors():
    with pytest.raises(ValidationError, match="effect_window"):
        SimulatedConfig(effect_window=(1.0, 5.0))
    with pytest.raises(ValidationError, match="not a class"):
        SimulatedConfig(confound={"artifact": "muscle", "class": "internal"})
    with pytest.raises(ValidationError, match=r"outside 1\.\.n_subjects"):
        SimulatedConfig(n_subjects=3, subjects=[4])
    with pytest.raises(ValidationError):
        SimulatedConfig(effect_size=-1)
    with pytest.raises(ValidationError):
        SimulatedConfig(confound={"artifact": "sneeze", "class": "left_hand"})
    with pytest.raises(DataError, match="Nyquist"):
        SimulatedLoader(SimulatedConfig(sfreq=100, mains_freq=50))
    loader = SimulatedLoader(cfg())
    with pytest.raises(DataError, match=r"S01 \.\. S03"):
        loader.load_subject("S04")
    with pytest.raises(DataError, match="no subject"):
        loader.files("subject1")


def test_study_config_and_registry():
    study = load_config(
        {"dataset": {"kind": "simulated", "paradigm": "auditory_attention"}},
        ["dataset.confound.artifact=muscle", "dataset.confound.class=right_ear",
         "dataset.n_subjects=2"],
    )
    ds_cfg = study.dataset
    assert isinstance(ds_cfg, SimulatedConfig)
    assert ds_cfg.confound is not None and ds_cfg.confound.class_ == "right_ear"
    assert ds_cfg.model_dump(mode="json")["confound"]["class"] == "right_ear"
    assert SimulatedConfig.model_validate(ds_cfg.model_dump(mode="json")) == ds_cfg
    loader = get_loader(ds_cfg)
    assert isinstance(loader, SimulatedLoader)
    assert loader.task == "auditory_attention" and loader.name == "simulated"
    assert loader.subject_ids() == ["S01", "S02"]
    assert loader.files("S01") == []
    assert loader.site_mains_freq() == 50.0
    with pytest.raises(ConfigError, match="confound"):
        load_config({"dataset": {"kind": "simulated",
                                 "confound": {"artifact": "blink", "class": "left_ear"}}})
    assert set(SIMULATED_CLASSES) == {"motor_imagery", "auditory_attention",
                                      "internal_attention"}


def test_variability_zero_gives_identical_subject_parameters():
    _, gt = simulate(cfg(variability=0, weak_fraction=0, n_trials=2))
    params = [(s.gain, s.aperiodic_exponent, s.peak_freqs, s.effect_scale)
              for s in gt.subjects.values()]
    assert all(p == params[0] for p in params)


# --------------------------------------------------------------------------- forward model
def test_dipole_potentials_match_mne_sphere_model():
    rng = np.random.default_rng(0)
    electrodes = rng.standard_normal((40, 3))
    electrodes /= np.linalg.norm(electrodes, axis=1, keepdims=True)
    # a dipole at the centre: three times the infinite-medium potential, 3 p.e
    moment = np.array([0.2, -0.5, 0.8])
    centre = dipole_potentials(electrodes, np.zeros(3), moment)[:, 0]
    np.testing.assert_allclose(centre, 3 * electrodes @ moment, rtol=1e-12)
    # an eccentric dipole: MNE's (exact) homogeneous-sphere EEG forward solution
    radius = 0.09
    names = [f"E{i}" for i in range(len(electrodes))]
    info = mne.create_info(names, 100.0, "eeg")
    info.set_montage(mne.channels.make_dig_montage(
        ch_pos=dict(zip(names, electrodes * radius, strict=True)), coord_frame="head"))
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.0), head_radius=radius,
                                   relative_radii=(0.999, 1.0), sigmas=(0.33, 0.33),
                                   verbose="error")
    position = np.array([0.3, -0.2, 0.6])
    orient = np.array([0.6, 0.0, 0.8])
    dip = mne.Dipole(np.zeros(1), position[None] * radius, np.ones(1), orient[None], np.ones(1))
    fwd, _ = mne.make_forward_dipole(dip, sphere, info, verbose="error")
    mne_potential = fwd["sol"]["data"][:, 0] * 4 * np.pi * 0.33 * radius**2
    ours = dipole_potentials(electrodes, position, orient)[:, 0]
    np.testing.assert_allclose(ours, mne_potential, rtol=1e-5, atol=1e-6 * np.abs(ours).max())

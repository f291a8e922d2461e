"""ICA per subject with ICLabel: rank, labels, determinism, storage, refusals, convergence."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from eegcrp.sources import (
    ICAConvergenceError,
    SourcesError,
    SubjectICA,
    check_channels,
    fit_subject,
)
from eegcrp.sources.ica import ica_data


@pytest.fixture(scope="module")
def fitted(sim_raw):
    raw, _ = sim_raw
    return fit_subject(raw, "S01", seed=3)


def test_fit_handles_the_car_rank_and_reconstructs_the_data(sim_raw, fitted):
    raw, windows = sim_raw
    n_channels = len(raw.ch_names)
    assert fitted.meta["rank"] == n_channels - 1 == fitted.n_components  # CAR removes one
    np.testing.assert_allclose(fitted.probabilities.sum(1), 1.0, atol=1e-5)
    assert 0.95 < fitted.explained_variance.sum() < 1.05
    # windows = sum of component terms + residual; with every component the residual is
    # only the PCA mean and the CAR null direction: tiny
    x = windows.get_data().astype(np.float64)
    recon = np.einsum("ck,nkt->nct", fitted.mixing, fitted.sources(x))
    assert np.abs(x - recon).max() < 1e-2 * np.abs(x).max()
    assert "eye" in fitted.labels  # the simulator's blinks
    assert fitted.meta["method"] == "picard" and fitted.meta["fit_params"]["extended"]
    assert fitted.meta["fit_params"]["ortho"] is False  # = extended infomax, as ICLabel needs


def test_same_seed_same_decomposition_and_round_trip(sim_raw, fitted, tmp_path):
    raw, _ = sim_raw
    again = fit_subject(raw, "S01", seed=3)
    np.testing.assert_array_equal(again.unmixing, fitted.unmixing)
    fitted.save(tmp_path / "s.nc", {"identity": "x"})
    back = SubjectICA.load(tmp_path / "s.nc")
    np.testing.assert_array_equal(back.mixing, fitted.mixing)
    assert back.labels == fitted.labels and back.meta["seed"] == fitted.meta["seed"]


def test_fewer_components_by_variance_and_count(sim_raw):
    raw, _ = sim_raw
    few = fit_subject(raw, "S01", n_components=0.9, seed=0)
    assert 2 <= few.n_components < 18
    with pytest.raises(SourcesError, match="rank 18"):
        fit_subject(raw, "S01", n_components=19)


def test_band_note_names_iclabels_band_and_the_fix(sim_raw):
    raw, _ = sim_raw
    fit_raw, notes = ica_data(raw, (1.0, 100.0))
    assert fit_raw.info["lowpass"] == 40.0  # never widened
    assert any("1-100 Hz" in n and "preprocessing.h_freq: 100" in n for n in notes)


def test_not_converging_is_a_clear_error(sim_raw):
    raw, _ = sim_raw
    with pytest.raises(ICAConvergenceError, match=r"did not converge .* sources.max_iter"):
        fit_subject(raw, "S01", max_iter=2)


def _info(names, kind="eeg"):
    info = mne.create_info(names, 128.0, kind)
    if kind == "eeg":
        info.set_montage("standard_1020", verbose="error")
    return info


def test_refuses_too_few_channels_other_types_and_bipolar():
    with pytest.raises(SourcesError, match="at least 4 EEG channels"):
        check_channels(_info(["C3", "Cz", "C4"]))
    with pytest.raises(SourcesError, match=r"EEG channels only.*sources.enabled=false"):
        check_channels(_info([f"MEG{k}" for k in range(6)], "mag"))
    info = _info(["C3", "Cz", "C4", "Pz"])
    from eegcrp.data.montage import mark_bipolar

    mark_bipolar(info, ["C3"])
    with pytest.raises(SourcesError, match="bipolar"):
        check_channels(info)
    with pytest.raises(SourcesError, match="no scalp position"):
        check_channels(mne.create_info(["a", "b", "c", "d"], 128.0, "eeg"))


def test_trials_only_data(sim_raw):
    raw, _ = sim_raw
    trials, notes = ica_data(raw, (1.0, 100.0), "trials")
    n_trials = sum(a["description"].startswith("trial/") for a in raw.annotations)
    assert trials.n_times == n_trials * 2 * 128  # 2-s trials, the margins left out
    assert any("trials only" in n for n in notes)

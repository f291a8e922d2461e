"""Preprocessing: filters on continuous recordings, windows, epoched sources, bipolar data."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest

from eegcrp.config import PreprocessingConfig, load_config
from eegcrp.data import get_loader
from eegcrp.data.base import DataError, Recording, is_bipolar, make_epochs, make_segment
from eegcrp.preprocessing import Preprocessor
from tests.helpers import real_folder

CH = ("C3", "Cz", "C4", "Pz")
EVENT_ID = {"a": 1, "b": 2}


def _recording(data: np.ndarray, sfreq: float, onsets, duration: float,
               line_freq: float | None = 50.0) -> Recording:
    """One continuous segment with trials at ``onsets`` (s), labels alternating a/b."""
    data = np.broadcast_to(data, (len(CH), np.shape(data)[-1])).copy()
    raw = mne.io.RawArray(data, mne.create_info(list(CH), sfreq, "eeg"), verbose="error")
    make_segment(raw, montage="standard_1005", line_freq=line_freq, where="test")
    labels = ["a" if k % 2 == 0 else "b" for k in range(len(onsets))]
    trials = pd.DataFrame({"segment": 0, "onset": list(onsets), "label": labels})
    return Recording("t", [raw], trials, duration, EVENT_ID).validate()


def _trials(signal, sfreq: float, n_trials: int = 2) -> mne.EpochsArray:
    data = np.broadcast_to(signal, (n_trials, len(CH), len(signal))).copy()
    labels = ["a", "b"] * (n_trials // 2) + ["a"] * (n_trials % 2)
    return make_epochs(data, ch_names=CH, sfreq=sfreq, labels=labels, event_id=EVENT_ID,
                       subject="t")


def _gain(x: np.ndarray, freq: float, amplitude: float) -> float:
    return float(np.std(x) / (amplitude / np.sqrt(2)) if freq > 0 else np.abs(x).max() / amplitude)


def _relative_error(windows: np.ndarray, reference: np.ndarray) -> float:
    """Largest per-window max |difference| relative to the window's max |reference|."""
    diff = np.abs(windows - reference).max(axis=(1, 2))
    return float(np.max(diff / np.abs(reference).max(axis=(1, 2))))


# MNE's default FIR for a 1-60 Hz band-pass: high-pass transition 0-1 Hz (-6 dB at 0.5 Hz),
# low-pass transition 60-75 Hz; the notch removes 50 Hz.
@pytest.mark.parametrize(("freq", "low", "high"), [
    (0.0, 0.0, 1e-6),    # DC removed
    (0.1, 0.0, 0.03),    # deep in the high-pass stop region
    (2.0, 0.99, 1.01),   # pass band
    (10.0, 0.99, 1.01),
    (45.0, 0.99, 1.01),
    (50.0, 0.0, 0.01),   # mains notch
    (80.0, 0.0, 0.01),   # above the low-pass: no alias back after resampling to 128 Hz
])
def test_filter_response_at_test_frequencies(freq: float, low: float, high: float) -> None:
    sfreq = 500.0
    t = np.arange(int(60 * sfreq)) / sfreq
    rec = _recording(1e-5 * np.cos(2 * np.pi * freq * t), sfreq, np.arange(5.0, 52.0, 5.0), 4.0)
    # 1-60 Hz, notch 50, 128 Hz; a tone the filters remove leaves a flat channel, which the
    # amplitude check would refuse: no lower limit here
    cfg = PreprocessingConfig(window=3.0, step=1.0, car=False, min_amplitude_uv=None)
    out = Preprocessor(cfg).process(rec)
    # every window: the filters ran on the continuous signal, trials start after 5 s
    assert low <= _gain(out.windows.get_data(), freq, 1e-5) <= high
    assert out.notes == []


def test_filter_response_on_an_epoched_source_away_from_the_edges() -> None:
    sfreq = 500.0
    t = np.arange(int(20 * sfreq)) / sfreq
    cfg = PreprocessingConfig(window=3.0, step=1.0, car=False)
    for freq, low, high in [(10.0, 0.99, 1.01), (50.0, 0.0, 0.01)]:
        out = Preprocessor(cfg, mains_freq=50.0).transform(
            _trials(1e-5 * np.cos(2 * np.pi * freq * t), sfreq))
        onset = out.metadata["onset"]
        mid = out.get_data()[(onset > 3) & (onset < 14)]
        assert low <= _gain(mid, freq, 1e-5) <= high


def _signal(n_channels: int, n_times: int, sfreq: float, seed: int = 0) -> np.ndarray:
    """Brown-ish noise + 10 Hz rhythm + 50 Hz mains + slow drift, ~tens of µV."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times) / sfreq
    x = np.cumsum(rng.standard_normal((n_channels, n_times)), axis=1) * 2e-7
    x += 1e-5 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, (n_channels, 1)))
    x += 5e-6 * np.sin(2 * np.pi * 50 * t) + 2e-5 * np.sin(2 * np.pi * 0.05 * t)
    return x


def _reference_windows(data, sfreq, onsets, l_freq, h_freq, notch, car, window, step,
                       duration):
    """Filter the whole signal with MNE's Raw methods, resample, then cut trials/windows."""
    raw = mne.io.RawArray(data.copy(), mne.create_info(len(data), sfreq, "eeg"),
                          verbose="error")
    raw.filter(l_freq, h_freq, verbose="error").notch_filter(notch, verbose="error")
    raw.resample(128.0, method="polyphase", verbose="error")
    x = raw.get_data()
    if car:
        x = x - x.mean(axis=0)
    win, hop, n_trial = int(window * 128), int(step * window * 128), int(duration * 128)
    out = []
    for onset in onsets:
        start = int(np.round(np.round(onset * sfreq) * 128.0 / sfreq))
        out.extend(x[:, start + w:start + w + win] for w in range(0, n_trial - win + 1, hop))
    return np.array(out)


def test_windows_equal_cuts_of_the_continuously_filtered_signal() -> None:
    sfreq = 500.0
    data = _signal(len(CH), int(60 * sfreq), sfreq)
    onsets = [2.0, 9.3, 17.77, 30.104, 45.0, 55.5]  # the first one close to the start
    cfg = PreprocessingConfig(window=2.0, step=0.5, car=True)  # 1-60 Hz, notch 50, 128 Hz
    windows = Preprocessor(cfg).process(_recording(data, sfreq, onsets, 4.0)).windows
    reference = _reference_windows(data, sfreq, onsets, 1.0, 60.0, [50.0], True, 2.0, 0.5, 4.0)
    assert windows.get_data().shape == reference.shape == (18, 4, 256)
    assert _relative_error(windows.get_data(), reference) < 1e-3
    # filtering each 4-s trial on its own (the former design) is far off the same reference
    per_trial = Preprocessor(cfg, mains_freq=50.0).transform(
        Recording("t", [make_segment(
            mne.io.RawArray(data[:, int(o * sfreq):int(o * sfreq) + 2000],
                            mne.create_info(list(CH), sfreq, "eeg"), verbose="error"),
            montage="standard_1005", line_freq=50.0, where="t") for o in onsets],
            pd.DataFrame({"segment": range(len(onsets)), "onset": 0.0,
                          "label": ["a", "b"] * 3}), 4.0, EVENT_ID, epoched=True))
    assert _relative_error(per_trial.get_data(), reference) > 0.05


@pytest.mark.realdata
def test_eegmmidb_windows_equal_cuts_of_the_continuously_filtered_runs() -> None:
    folder = real_folder("eegmmidb_mi")
    loader = get_loader(load_config({"dataset": {"kind": "eegmmidb", "subjects": [2]}}).dataset)
    cfg = PreprocessingConfig()  # 1-60 Hz, notch 60 (USA), 128 Hz, 3-s windows, CAR
    out = Preprocessor(cfg).process(loader.load_recording("S002"))
    windows, meta = out.windows.get_data(), out.windows.metadata
    # independently: read each run, filter it whole with MNE, resample, cut at T1/T2
    reference = []
    for run in (4, 8, 12):
        raw = mne.io.read_raw_edf(folder / f"S002R{run:02d}.edf", preload=True, verbose="error")
        mne.datasets.eegbci.standardize(raw)
        raw.pick("eeg")
        onsets = [o for o, d in zip(raw.annotations.onset, raw.annotations.description,
                                    strict=True) if d in ("T1", "T2") and o + 4 <= raw.times[-1]]
        reference.append(_reference_windows(raw.get_data(), 160.0, onsets, 1.0, 60.0, [60.0],
                                            True, 3.0, 1.0, 4.0))
    reference = np.concatenate(reference)
    assert windows.shape == reference.shape == (45, 64, 384)
    assert meta["run"].value_counts().to_dict() == {4: 15, 8: 15, 12: 15}
    assert _relative_error(windows, reference) < 1e-3


def test_notch_frequencies_follow_mains_and_lowpass() -> None:
    assert Preprocessor(PreprocessingConfig(h_freq=60), 50.0).notch_freqs(500) == [50.0]
    assert Preprocessor(PreprocessingConfig(h_freq=None, sfreq=500), 60.0).notch_freqs(500) == [
        60.0, 120.0, 180.0, 240.0]
    assert Preprocessor(PreprocessingConfig(notch="none"), 50.0).notch_freqs(500) == []
    assert Preprocessor(PreprocessingConfig(notch=60.0), 50.0).notch_freqs(500) == [60.0]
    assert Preprocessor(PreprocessingConfig(), None).notch_freqs(500) == []
    # without an override, the recording's line_freq decides
    assert Preprocessor(PreprocessingConfig()).notch_freqs(500, 60.0) == [60.0]


def test_no_mains_frequency_is_stated() -> None:
    rec = _recording(_signal(4, 5000, 250.0), 250.0, [2.0, 10.0], 4.0, line_freq=None)
    out = Preprocessor(PreprocessingConfig()).process(rec)
    assert out.notes == ["the recordings state no mains frequency: no notch filter"]


def test_car_makes_channel_mean_zero_and_zscore() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, len(CH), 1000)) * 1e-5 + np.arange(len(CH))[:, None] * 1e-5
    ep = make_epochs(data, ch_names=CH, sfreq=250, labels=["a", "b", "a", "b"],
                     event_id=EVENT_ID, subject="t")
    out = Preprocessor(PreprocessingConfig(car=True), 50.0).transform(ep).get_data()
    assert np.abs(out.mean(axis=1)).max() < 1e-6 * np.abs(out).max()
    z = Preprocessor(PreprocessingConfig(car=False, zscore=True), 50.0).transform(ep).get_data()
    assert np.allclose(z.mean(axis=(1, 2)), 0, atol=1e-5)
    assert np.allclose(z.std(axis=(1, 2)), 1, atol=1e-4)


def test_windows_count_boundaries_and_never_cross_trials() -> None:
    sfreq, n = 128.0, 1280  # 10-s trials
    data = np.stack([np.full((len(CH), n), k, dtype=float) for k in range(3)]) * 1e-6
    ep = make_epochs(data, ch_names=CH, sfreq=sfreq, labels=["a", "b", "a"],
                     event_id=EVENT_ID, subject="t")
    cfg = PreprocessingConfig(l_freq=None, h_freq=None, notch="none", car=False, window=3.0,
                              step=0.5)
    out = Preprocessor(cfg).transform(ep)
    # starts 0, 1.5, 3, 4.5, 6 s (7.5 + 3 > 10): 5 windows per trial
    assert len(out) == 15 and len(out.times) == 384
    assert out.metadata["onset"].tolist()[:5] == [0.0, 1.5, 3.0, 4.5, 6.0]
    assert out.metadata["window"].tolist()[:6] == [0, 1, 2, 3, 4, 0]
    x = out.get_data()
    for k, trial in enumerate(out.metadata["trial"]):
        assert np.allclose(x[k], trial * 1e-6)  # every sample from its own trial
    assert out.events[:, 2].tolist() == [1] * 5 + [2] * 5 + [1] * 5
    assert Preprocessor(cfg.model_copy(update={"step": 1.0})).window_starts(n).tolist() == [
        0, 384, 768]


def test_resampling_keeps_the_sample_grid_for_any_length() -> None:
    pre = Preprocessor(PreprocessingConfig())
    t = np.arange(20003) / 160.0  # not a multiple of the polyphase factor (5)
    out = pre.resample(np.sin(2 * np.pi * 3 * t)[None], 160.0)
    assert out.shape == (1, 16003)
    expected = np.sin(2 * np.pi * 3 * np.arange(16003) / 128.0)
    assert np.abs(out[0, 100:-100] - expected[100:-100]).max() < 1e-3


def test_sfreq_below_twice_upper_edge_names_fix() -> None:
    ep = _trials(np.zeros(1000), 100.0)
    with pytest.raises(DataError, match=r"sampled at 100.0 Hz.*set preprocessing.h_freq to at "
                                        r"most 50 Hz"):
        Preprocessor(PreprocessingConfig(), 50.0).transform(ep)


def test_nan_in_trials_is_rejected() -> None:
    ep = _trials(np.zeros(1000), 250.0)
    ep._data[0, 1, 3] = np.nan
    with pytest.raises(DataError, match="subject t contains 1 NaN/Inf"):
        Preprocessor(PreprocessingConfig(), 50.0).transform(ep, "t")


# --------------------------------------------------------------------------- epoched sources
def _bci(**pre):
    real_folder("bciciv2b_epoched")
    cfg = load_config({"dataset": {"kind": "bciciv2b", "subjects": [1], "sessions": ["01T"]},
                       "preprocessing": {"car": False, **pre}})
    return get_loader(cfg.dataset).load_recording("B01"), cfg.preprocessing


@pytest.mark.realdata
def test_bciciv2b_epochs_are_only_resampled_with_a_stated_note() -> None:
    rec, cfg = _bci()
    assert rec.epoched and rec.prefiltered == (8.0, 30.0) and len(rec.segments) == 120
    out = Preprocessor(cfg).process(rec)
    (note,) = out.notes
    assert "4-s epochs, already filtered to 8-30 Hz" in note
    assert "1 Hz high-pass, the 60 Hz low-pass and the 50 Hz notch are skipped" in note
    assert "only resampled" in note
    # definition: each epoch resampled 250 -> 128 Hz (polyphase), first 3 s
    epochs = np.stack([seg.get_data() for seg in rec.segments])
    expected = mne.filter.resample(epochs, up=64.0, down=125.0, method="polyphase",
                                   verbose="error")[..., :384]
    np.testing.assert_allclose(out.windows.get_data(), expected, rtol=1e-6,
                               atol=1e-6 * np.abs(expected).max())
    assert out.windows.info["highpass"] == 8.0 and out.windows.info["lowpass"] == 30.0


@pytest.mark.realdata
def test_bciciv2b_in_band_high_pass_runs_on_each_epoch() -> None:
    rec, cfg = _bci(l_freq=10.0)
    out = Preprocessor(cfg).process(rec)
    (note,) = out.notes
    assert "the 10 Hz high-pass filter (" in note and "FIR) runs on each whole epoch" in note
    assert "60 Hz low-pass and the 50 Hz notch are skipped" in note
    epochs = np.stack([seg.get_data() for seg in rec.segments])
    filtered = mne.filter.filter_data(epochs, 250.0, 10.0, None, verbose="error")
    expected = mne.filter.resample(filtered, up=64.0, down=125.0, method="polyphase",
                                   verbose="error")[..., :384]
    np.testing.assert_allclose(out.windows.get_data(), expected, rtol=1e-6,
                               atol=1e-6 * np.abs(expected).max())


@pytest.mark.realdata
def test_bipolar_channels_refuse_car() -> None:
    rec, cfg = _bci()
    assert is_bipolar(rec.segments[0].info) and is_bipolar(rec.to_epochs().info)
    coil = {ch["coil_type"] for ch in rec.segments[0].info["chs"]}
    assert coil == {mne.io.constants.FIFF.FIFFV_COIL_EEG_BIPOLAR}
    assert not is_bipolar(_trials(np.zeros(100), 100.0).info)
    with pytest.raises(DataError, match=r"B01\): channels \['C3', 'Cz', 'C4'\] are bipolar "
                                        r"derivations; their average is no reference.*"
                                        r"--set preprocessing\.car=false"):
        Preprocessor(cfg.model_copy(update={"car": True})).process(rec)


def test_min_window_onset_keeps_only_later_windows_and_refuses_short_trials() -> None:
    sfreq, n = 128.0, 1280  # 10-s trials
    data = np.stack([np.full((len(CH), n), k, dtype=float) for k in range(2)]) * 1e-6
    ep = make_epochs(data, ch_names=CH, sfreq=sfreq, labels=["a", "b"], event_id=EVENT_ID,
                     subject="t")
    cfg = PreprocessingConfig(l_freq=None, h_freq=None, notch="none", car=False, window=3.0,
                              step=0.5, min_window_onset=1.0)
    out = Preprocessor(cfg).transform(ep)
    # starts 1, 2.5, 4, 5.5, 7 s: every window starts at least 1 s after the trial start
    assert out.metadata["onset"].tolist()[:5] == [1.0, 2.5, 4.0, 5.5, 7.0]
    assert len(out) == 10
    with pytest.raises(DataError, match="min_window_onset"):
        Preprocessor(cfg.model_copy(update={"min_window_onset": 7.5})).transform(ep)


def test_drop_channels_removes_them_before_the_average_reference() -> None:
    sfreq = 128.0
    t = np.arange(int(20 * sfreq)) / sfreq
    rec = _recording(np.sin(2 * np.pi * 10 * t) * 1e-5, sfreq, [2.0, 8.0], 4.0)
    rec.segments[0]._data[0] += 1e-4 * np.sin(2 * np.pi * 3 * t)  # a bad C3
    cfg = PreprocessingConfig(notch="none", window=2.0, drop_channels=["C3"])
    out = Preprocessor(cfg).process(rec)
    assert out.windows.ch_names == ["Cz", "C4", "Pz"]
    np.testing.assert_allclose(out.windows.get_data().mean(axis=1), 0, atol=1e-12)
    assert rec.ch_names == list(CH)  # the recording itself is left as it was
    with pytest.raises(DataError, match=r"drop_channels names \['T7'\].*its channels"):
        Preprocessor(cfg.model_copy(update={"drop_channels": ["T7"]})).process(rec)

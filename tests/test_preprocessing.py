"""Preprocessing properties and the on-disk cache."""

from __future__ import annotations

import logging
import os
import shutil

import mne
import numpy as np
import pytest

from eegcrp.config import PreprocessingConfig, load_config
from eegcrp.data.base import DataError, make_epochs
from eegcrp.preprocessing import Preprocessor, cache_folder, prepare
from tests.conftest import real_folder

CH = ("C3", "Cz", "C4", "Pz")


def _trials(signal, sfreq: float, n_trials: int = 2) -> mne.EpochsArray:
    data = np.broadcast_to(signal, (n_trials, len(CH), len(signal))).copy()
    labels = ["a", "b"] * (n_trials // 2) + ["a"] * (n_trials % 2)
    return make_epochs(data, ch_names=CH, sfreq=sfreq, labels=labels,
                       event_id={"a": 1, "b": 2}, subject="t")


def _amplitude(x: np.ndarray, sfreq: float, freq: float) -> float:
    """Amplitude of the ``freq`` component of each row (least squares), averaged."""
    t = np.arange(x.shape[-1]) / sfreq
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], 1)
    coef = np.linalg.lstsq(basis, x.reshape(-1, x.shape[-1]).T, rcond=None)[0]
    return float(np.mean(np.hypot(*coef)))


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
    t = np.arange(int(20 * sfreq)) / sfreq
    ep = _trials(1e-5 * np.cos(2 * np.pi * freq * t), sfreq)
    cfg = PreprocessingConfig(window=3.0, step=1.0, car=False)  # 1-60 Hz, notch 50, 128 Hz
    out = Preprocessor(cfg, mains_freq=50.0).transform(ep)
    # windows away from the trial edges (edge transients are the filter's business)
    mid = out.get_data()[(out.metadata["window_start"] > 3) & (out.metadata["window_start"] < 14)]
    gain = np.std(mid) / (1e-5 / np.sqrt(2)) if freq > 0 else np.abs(mid).max() / 1e-5
    assert low <= gain <= high


def test_notch_frequencies_follow_mains_and_lowpass() -> None:
    assert Preprocessor(PreprocessingConfig(h_freq=60), 50.0).notch_freqs(500) == [50.0]
    assert Preprocessor(PreprocessingConfig(h_freq=None, sfreq=500), 60.0).notch_freqs(500) == [
        60.0, 120.0, 180.0, 240.0]
    assert Preprocessor(PreprocessingConfig(notch="none"), 50.0).notch_freqs(500) == []
    assert Preprocessor(PreprocessingConfig(notch=60.0), 50.0).notch_freqs(500) == [60.0]
    assert Preprocessor(PreprocessingConfig(), None).notch_freqs(500) == []


def test_car_makes_channel_mean_zero_and_zscore() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, len(CH), 1000)) * 1e-5 + np.arange(len(CH))[:, None] * 1e-5
    ep = make_epochs(data, ch_names=CH, sfreq=250, labels=["a", "b", "a", "b"],
                     event_id={"a": 1, "b": 2}, subject="t")
    out = Preprocessor(PreprocessingConfig(car=True), 50.0).transform(ep).get_data()
    assert np.abs(out.mean(axis=1)).max() < 1e-6 * np.abs(out).max()
    z = Preprocessor(PreprocessingConfig(car=False, zscore=True), 50.0).transform(ep).get_data()
    assert np.allclose(z.mean(axis=(1, 2)), 0, atol=1e-5)
    assert np.allclose(z.std(axis=(1, 2)), 1, atol=1e-4)


def test_windows_count_boundaries_and_never_cross_trials() -> None:
    sfreq, n = 128.0, 1280  # 10-s trials
    data = np.stack([np.full((len(CH), n), k, dtype=float) for k in range(3)]) * 1e-6
    ep = make_epochs(data, ch_names=CH, sfreq=sfreq, labels=["a", "b", "a"],
                     event_id={"a": 1, "b": 2}, subject="t")
    cfg = PreprocessingConfig(l_freq=None, h_freq=None, notch="none", car=False, window=3.0,
                              step=0.5)
    out = Preprocessor(cfg).transform(ep)
    # starts 0, 1.5, 3, 4.5, 6 s (7.5 + 3 > 10): 5 windows per trial
    assert len(out) == 15 and len(out.times) == 384
    assert out.metadata["window_start"].tolist()[:5] == [0.0, 1.5, 3.0, 4.5, 6.0]
    x = out.get_data()
    for k, trial in enumerate(out.metadata["trial"]):
        assert np.allclose(x[k], trial * 1e-6)  # every sample from its own trial
    assert out.events[:, 2].tolist() == [1] * 5 + [2] * 5 + [1] * 5
    assert Preprocessor(cfg.model_copy(update={"step": 1.0})).window_starts(n).tolist() == [
        0, 384, 768]


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


# --------------------------------------------------------------------------- cache
def _bci_config(tmp_path, **pre):
    real = real_folder("bciciv2b_epoched")
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        for name in ("B0101T.mat", "B0201T.mat", "B0301T.mat"):
            shutil.copy(real / name, data / name)
    return load_config({"dataset": {"kind": "bciciv2b", "path": str(data), "sessions": ["01T"]},
                        "output_dir": str(tmp_path / "out"), "preprocessing": pre})


def test_cache_hit_invalidation_and_subject_reuse(tmp_path) -> None:
    cfg = _bci_config(tmp_path)
    first = prepare(cfg, progress=False)
    assert first.info["cache_hits"] == 0 and first.summary()["n_epochs"].tolist() == [120] * 3
    second = prepare(cfg, progress=False)
    assert second.info["cache_hits"] == 3
    for s in first.subjects:  # the cache returns exactly what was computed
        np.testing.assert_array_equal(first[s].get_data(), second[s].get_data())
        assert second[s].metadata.equals(first[s].metadata) or \
            second[s].metadata.astype(str).equals(first[s].metadata.astype(str))
    # a changed preprocessing config never reuses stale data
    other = _bci_config(tmp_path, window=2.0)
    assert cache_folder(other) != cache_folder(cfg)
    assert prepare(other, progress=False).info["cache_hits"] == 0
    # a changed source file invalidates only that subject
    f = tmp_path / "data" / "B0201T.mat"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert prepare(cfg, progress=False).info["cache_hits"] == 2
    # a subset of subjects reuses the shared cache
    sub = cfg.model_copy(deep=True)
    sub.dataset.subjects = [1, 3]
    assert cache_folder(sub) == cache_folder(cfg)
    assert prepare(sub, progress=False).info["cache_hits"] == 2
    manifest = (cache_folder(cfg) / "manifest.json").read_text()
    assert '"left_hand"' in manifest and '"sfreq": 128.0' in manifest


def test_interrupted_write_leaves_nothing_half_written(tmp_path, monkeypatch) -> None:
    cfg = _bci_config(tmp_path)

    def broken_save(self, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(mne.BaseEpochs, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        prepare(cfg, progress=False)
    assert list(cache_folder(cfg).iterdir()) == []
    monkeypatch.undo()
    assert prepare(cfg, progress=False).info["cache_hits"] == 0


def test_subject_with_too_short_trials_is_dropped_with_warning(tmp_path, caplog) -> None:
    cfg = _bci_config(tmp_path, window=4.5)  # 4-s trials
    with caplog.at_level(logging.WARNING), pytest.raises(DataError, match="has 0 subject"):
        prepare(cfg, progress=False)
    assert "shorter than preprocessing.window" in caplog.text and "is dropped" in caplog.text


def test_prepare_is_deterministic_without_cache(tmp_path) -> None:
    cfg = _bci_config(tmp_path)
    a = prepare(cfg, progress=False, use_cache=False)
    b = prepare(cfg, progress=False, use_cache=False)
    np.testing.assert_array_equal(a["B01"].get_data(), b["B01"].get_data())

from __future__ import annotations

import mne
import numpy as np
import pytest

from eegcrp.config import load_config
from eegcrp.data.base import EEGDataset, make_epochs
from eegcrp.report.training_section import add_training_section, chance_threshold
from eegcrp.training import LOSOTrainer
from tests.conftest import synthetic_dataset


def _trained_section_html(ds: EEGDataset, kind: str, repetitions: int, max_epochs: int,
                          tmp_path) -> str:
    """Train a LOSO on ``ds`` under ``tmp_path`` and return the rendered training section."""
    cfg = load_config({"dataset": {"kind": kind}, "output_dir": str(tmp_path),
                       "training": {"repetitions": repetitions, "max_epochs": max_epochs,
                                    "threads": 1}})
    LOSOTrainer(cfg.model, cfg.training).fit(ds, tmp_path, progress=False)
    report = mne.Report(verbose="error")
    add_training_section(report, cfg, ds)
    report.save(tmp_path / "r.html", open_browser=False, verbose="error")
    return (tmp_path / "r.html").read_text()


def test_chance_threshold_shrinks_with_test_size() -> None:
    small = chance_threshold(np.array([0, 1] * 10))
    large = chance_threshold(np.array([0, 1] * 500))
    assert 0.6 < small < 0.75  # 20 trials: ~0.70 needed at p < 0.05
    assert 0.5 < large < 0.54
    assert chance_threshold(np.array([0, 1, 2] * 300)) < 0.4


def test_section_from_real_training_artifacts(tmp_path) -> None:
    ds = synthetic_dataset(n_subjects=3, n_trials=8, n_times=128)
    html = _trained_section_html(ds, "bciciv2b", 2, 2, tmp_path)
    for title in ("Summary", "Accuracy per test subject", "Accuracy per repetition",
                  "Confusion matrix", "Learning curves"):
        assert title in html
    assert "3 folds x 2 repetition(s)" in html


def test_no_section_without_training(tmp_path) -> None:
    cfg = load_config({"dataset": {"kind": "bciciv2b"}, "output_dir": str(tmp_path)})
    report = mne.Report(verbose="error")
    add_training_section(report, cfg, synthetic_dataset())
    assert report.get_contents()[0] == []


@pytest.mark.parametrize("n", [10, 100])
def test_chance_threshold_is_a_quantile_of_the_null(n: int) -> None:
    y = np.array([0, 1] * (n // 2))
    thr = chance_threshold(y, alpha=0.05, n_permutations=4000, seed=1)
    rng = np.random.default_rng(2)
    null = np.array([np.mean(rng.permutation(y) == y) for _ in range(4000)])
    # the null is discrete: thr is its 95th percentile, so P(null > thr) <= 5% <= P(null >= thr)
    assert np.mean(null > thr) <= 0.05 + 0.015
    assert np.mean(null >= thr) >= 0.05 - 0.015


def test_threshold_counts_trials_not_windows() -> None:
    # 10 trials cut into 10 windows each carry the evidence of 10 trials, not of 100 windows
    y_trials = np.array([0, 1] * 5)
    y_windows, trials = np.repeat(y_trials, 10), np.repeat(np.arange(10), 10)
    by_trial = chance_threshold(y_windows, trials=trials, seed=3)
    assert by_trial == chance_threshold(y_trials, seed=3)
    assert by_trial >= 0.8  # 4 of 5 trials per class: not significant with 10 trials
    assert chance_threshold(y_windows, seed=3) < 0.62
    with pytest.raises(ValueError, match="different labels"):
        chance_threshold(np.array([0, 1, 1, 1]), trials=np.array([0, 0, 1, 1]))


def test_balanced_threshold_does_not_reward_the_majority_class() -> None:
    y = np.array([0] * 60 + [1] * 20)
    majority = np.zeros_like(y)
    accuracy = np.mean(majority == y)  # 0.75
    balanced = np.mean([np.mean(majority[y == c] == c) for c in (0, 1)])  # 0.5
    assert accuracy > chance_threshold(y)  # plain accuracy: "significant" though blind
    assert balanced < chance_threshold(y, balanced=True)
    assert 0.55 < chance_threshold(y, balanced=True) < 0.7


def _imbalanced_windowed(n_subjects: int = 3) -> EEGDataset:
    """Three 'rest' trials per 'task' trial, each cut into 4 windows (trial ids repeat)."""
    rng = np.random.default_rng(0)
    epochs = {}
    for k in range(n_subjects):
        labels = np.repeat(["rest", "rest", "rest", "task"] * 2, 4)
        sid = f"s{k:02d}"
        ep = make_epochs(rng.standard_normal((len(labels), 3, 128)) * 1e-5,
                         ch_names=("C3", "Cz", "C4"), sfreq=128.0, labels=list(labels),
                         event_id={"rest": 1, "task": 2}, subject=sid)
        meta = ep.metadata.copy()
        meta["trial"] = np.repeat(np.arange(8), 4)
        ep.metadata = meta
        epochs[sid] = ep
    return EEGDataset("imbalanced", epochs, "internal_attention", 50.0)


def test_section_judges_imbalanced_data_by_balanced_accuracy(tmp_path) -> None:
    html = _trained_section_html(_imbalanced_windowed(), "eegmat", 1, 1, tmp_path)
    assert "Balanced accuracy per test subject" in html
    assert "always predicting the majority class scores accuracy 0.75" in html
    assert "32 windows from 8 trials" in html

from __future__ import annotations

import mne
import numpy as np
import pytest

from eegcrp.config import load_config
from eegcrp.report.training_section import add_training_section, chance_threshold
from eegcrp.training import LOSOTrainer
from tests.conftest import synthetic_dataset


def test_chance_threshold_shrinks_with_test_size() -> None:
    small = chance_threshold(np.array([0, 1] * 10))
    large = chance_threshold(np.array([0, 1] * 500))
    assert 0.6 < small < 0.75  # 20 trials: ~0.70 needed at p < 0.05
    assert 0.5 < large < 0.54
    assert chance_threshold(np.array([0, 1, 2] * 300)) < 0.4


def test_section_from_real_training_artifacts(tmp_path) -> None:
    ds = synthetic_dataset(n_subjects=3, n_trials=8, n_times=128)
    cfg = load_config({"dataset": {"kind": "bciciv2b"}, "output_dir": str(tmp_path),
                       "training": {"repetitions": 2, "max_epochs": 2, "threads": 1}})
    LOSOTrainer(cfg.model, cfg.training).fit(ds, tmp_path, progress=False)
    report = mne.Report(verbose="error")
    add_training_section(report, cfg, ds)
    report.save(tmp_path / "r.html", open_browser=False, verbose="error")
    html = (tmp_path / "r.html").read_text()
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

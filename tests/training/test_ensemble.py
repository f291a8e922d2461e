"""Repetition ensembles and the same-fold baselines."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.errors import StoreError
from eegcrp.stats import fold_metrics
from eegcrp.training.baselines import log_band_power, loso_probabilities, tangent_space
from eegcrp.training.ensemble import (
    ensemble_probabilities,
    single_models_row,
    subject_predictions,
)


def _fold(rep: int, subject: str, proba: np.ndarray, y: list[int]) -> dict:
    return {"name": f"rep{rep:02d}_sub-{subject}", "repetition": rep, "test_subject": subject,
            "predictions": {"proba": proba.tolist(), "y_true": y, "trial": None}}


def test_ensemble_is_the_mean_of_its_members_probabilities():
    rng = np.random.default_rng(0)
    members = [rng.dirichlet([1, 1], size=6) for _ in range(5)]
    expected = sum(members) / 5
    np.testing.assert_array_equal(ensemble_probabilities(members), np.mean(members, axis=0))
    np.testing.assert_allclose(ensemble_probabilities(members), expected, rtol=1e-15)
    with pytest.raises(ValueError, match="different window sets"):
        ensemble_probabilities([members[0], members[1][:4]])


def test_folds_group_by_subject_and_single_scores_average_over_repetitions():
    rng = np.random.default_rng(1)
    y = [0, 1, 0, 1, 1, 0]
    folds = [_fold(r, s, rng.dirichlet([1, 1], size=6), y) for r in range(3) for s in "AB"]
    grouped = subject_predictions(folds)
    assert list(grouped) == ["A", "B"] and grouped["A"].repetitions == [0, 1, 2]
    mine = [np.asarray(f["predictions"]["proba"]) for f in folds if f["test_subject"] == "A"]
    np.testing.assert_array_equal(grouped["A"].ensemble, np.mean(mine, axis=0))
    row = single_models_row(grouped["A"])
    expected = np.mean([fold_metrics(np.array(y), p)["balanced_accuracy"] for p in mine])
    assert row["balanced_accuracy"] == pytest.approx(expected)
    assert row["n_models"] == 3


def test_repetitions_scored_on_other_windows_are_refused():
    p = np.full((4, 2), 0.5)
    folds = [_fold(0, "A", p, [0, 1, 0, 1]), _fold(1, "A", p, [1, 1, 0, 0])]
    with pytest.raises(StoreError, match="different windows"):
        subject_predictions(folds)
    with pytest.raises(StoreError, match="no test predictions"):
        subject_predictions([{"name": "x", "test_subject": "A", "repetition": 0}])


def _planted(n_subjects: int = 4, n: int = 40, seed: int = 0):
    """Class 1 has 3x the 10 Hz power on channel 0; each subject its own gain."""
    rng = np.random.default_rng(seed)
    t = np.arange(256) / 128
    xs, ys, gs = [], [], []
    for s in range(n_subjects):
        y = np.arange(n) % 2
        x = rng.standard_normal((n, 4, 256))
        x[:, 0] += (1 + 2 * y)[:, None] * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, (n, 1)))
        xs.append(x * 1e-6 * (1 + s))
        ys.append(y)
        gs += [f"s{s}"] * n
    return np.concatenate(xs), np.concatenate(ys), np.array(gs)


@pytest.mark.parametrize("features", ["logbp", "ts"])
def test_baselines_decode_a_planted_band_power_effect_across_subjects(features):
    x, y, groups = _planted()
    f = log_band_power(x, 128.0, groups) if features == "logbp" else tangent_space(x, groups)
    subjects = ["s0", "s1", "s2", "s3"]
    probas = loso_probabilities(f, y, groups, subjects, 2)
    for s in subjects:
        assert probas[s].shape == ((groups == s).sum(), 2)
        assert fold_metrics(y[groups == s], probas[s])["balanced_accuracy"] > 0.8


def test_tangent_space_ignores_each_subjects_scale():
    x, _, groups = _planted()
    scaled = x.copy()
    scaled[groups == "s1"] *= 1e3
    np.testing.assert_allclose(tangent_space(scaled, groups), tangent_space(x, groups),
                               atol=1e-8)

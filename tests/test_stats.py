"""Classification statistics (eegcrp.stats): fold scores and chance thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.stats import chance_threshold, fold_metrics, pooled_metrics


def test_chance_threshold_shrinks_with_test_size() -> None:
    small = chance_threshold(np.array([0, 1] * 10))
    large = chance_threshold(np.array([0, 1] * 500))
    assert 0.6 < small < 0.75  # 20 trials: ~0.70 needed at p < 0.05
    assert 0.5 < large < 0.54
    assert chance_threshold(np.array([0, 1, 2] * 300)) < 0.4


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


def test_fold_metrics_and_pooling():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    m = fold_metrics(y, proba)
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == 0.75
    assert m["roc_auc"] == 1.0 and m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert np.isnan(fold_metrics(np.array([1, 1]), proba[2:])["roc_auc"])  # one class
    folds = [{"repetition": 0, "predictions": {"y_true": y.tolist(), "proba": proba.tolist()}},
             {"repetition": 0, "predictions": {"y_true": [1], "proba": [[0.9, 0.1]]}}]
    pooled = pooled_metrics(folds)
    assert len(pooled) == 1 and pooled.n_test[0] == 5 and pooled.accuracy[0] == 0.6

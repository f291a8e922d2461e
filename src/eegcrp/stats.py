"""Classification statistics: per-fold scores, pooled scores, summaries, chance thresholds.

These are the numbers a study reports; the report draws them, it does not compute them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: How signed relevance is summed over a set (regions, components): as it is, its positive
#: part only, or its magnitude. Defined here once for every summary that uses them.
MEASURES = ("signed", "positive", "absolute")

__all__ = ["METRICS", "chance_threshold", "fold_metrics", "pooled_metrics", "summarize"]

#: Per-fold scores written to metrics.csv.
METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc")


def fold_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, ROC AUC and confusion matrix of one test set.

    ROC AUC uses the probability of class 1 for two classes and one-vs-rest averaging for
    more; it is NaN when the test set holds a single class.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        roc_auc_score,
    )

    y_true = np.asarray(y_true)
    n_classes = proba.shape[1]
    y_pred = proba.argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: dict[str, Any] = {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        }
        try:
            if len(np.unique(y_true)) < 2:
                raise ValueError("single class")
            if n_classes == 2:
                auc = roc_auc_score(y_true, proba[:, 1])
            else:
                auc = roc_auc_score(
                    y_true, proba, multi_class="ovr", labels=list(range(n_classes))
                )
            out["roc_auc"] = float(auc)
        except ValueError:
            out["roc_auc"] = float("nan")
    out["confusion_matrix"] = confusion_matrix(
        y_true, y_pred, labels=list(range(n_classes))
    ).tolist()
    return out


def pooled_metrics(folds: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Scores of each repetition's pooled test predictions (the thesis' "iteration level")."""
    rows = []
    by_rep: dict[int, list[dict[str, Any]]] = {}
    for fold in folds:
        by_rep.setdefault(int(fold["repetition"]), []).append(fold)
    for rep, items in sorted(by_rep.items()):
        y_true = np.concatenate([f["predictions"]["y_true"] for f in items])
        proba = np.concatenate([np.asarray(f["predictions"]["proba"]) for f in items])
        scores = fold_metrics(y_true, proba)
        scores.pop("confusion_matrix")
        rows.append({"repetition": rep, "n_test": len(y_true), **scores})
    return pd.DataFrame(rows)


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, min and max of each score over all folds (the thesis' "subject level")."""
    cols = [c for c in METRICS if c in metrics]
    return metrics[cols].agg(["mean", "std", "min", "max"]).T


def chance_threshold(
    y: np.ndarray,
    alpha: float = 0.05,
    n_permutations: int = 2000,
    seed: int = 0,
    *,
    trials: np.ndarray | None = None,
    balanced: bool = False,
) -> float:
    """Score a classifier must exceed to be better than chance at level ``alpha``.

    Permutation null for a test set with labels ``y``: the score of permuted labels against
    the true labels (a classifier that ignores the data but knows the class proportions).
    Unlike the theoretical chance level (1 / n_classes), it grows as the test set shrinks
    (Combrisson & Jerbi, J Neurosci Methods 2015).

    Parameters
    ----------
    y : ndarray, shape (n_windows,)
        True class of each test window.
    alpha : float
        Significance level (the threshold is the null's ``1 - alpha`` quantile).
    n_permutations : int
        Size of the null distribution.
    seed : int
        Seed of the permutations (the threshold is reproducible).
    trials : ndarray | None
        Trial id of each window. Windows cut from one trial share its label and are not
        independent evidence, so the permutation moves whole trials: the null then has as
        many degrees of freedom as the test set has trials, not windows. None: every window
        is its own trial.
    balanced : bool
        Threshold for balanced accuracy (mean recall over classes) instead of accuracy. Its
        null centres on 1 / n_classes whatever the class proportions, while a constant
        majority-class prediction beats the accuracy threshold of an imbalanced test set.

    Returns
    -------
    float
        The ``1 - alpha`` quantile of the null scores.
    """
    y = np.asarray(y)
    if trials is None:
        trial_labels, inverse = y, np.arange(len(y))
    else:
        _, first, inverse = np.unique(np.asarray(trials), return_index=True,
                                      return_inverse=True)
        trial_labels = y[first]
        if np.any(trial_labels[inverse] != y):
            raise ValueError("windows of one trial carry different labels; check `trials`")
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(trial_labels, (n_permutations, 1)), axis=1)
    hits = perms[:, inverse] == y  # (n_permutations, n_windows)
    if balanced:
        null = np.mean([hits[:, y == c].mean(axis=1) for c in np.unique(y)], axis=0)
    else:
        null = hits.mean(axis=1)
    return float(np.quantile(null, 1 - alpha))

"""Repetition ensembles: the R models trained for one held-out subject, as one classifier.

Each repetition of the leave-one-subject-out study trains a model per held-out subject with
its own seed and validation subjects. The R models of a subject are an ensemble whose
prediction is the mean of their class probabilities. Its score is not the mean of theirs:
averaging removes the seed-to-seed variance of each window's prediction, which is why both
are reported side by side (:func:`subject_scores`).

The explanation of such an ensemble, as far as LRP goes, is the mean of its members'
relevance maps: for the ensemble that averages the members' logits, a linear averaging layer
passes each member the share of relevance its logit contributes, and LRP's rules are
homogeneous in the relevance they start from, so the members' maps (each started at its own
logit) average to the ensemble's map. :func:`eegcrp.report.headlines.dominant_bands` uses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import StoreError
from ..stats import METRICS, fold_metrics

__all__ = ["SubjectPredictions", "ensemble_probabilities", "scores_row",
           "subject_predictions"]


def ensemble_probabilities(members: Sequence[np.ndarray]) -> np.ndarray:
    """The ensemble's class probabilities: the mean of its members' (same windows, order)."""
    arrays = [np.asarray(m, np.float64) for m in members]
    if not arrays:
        raise ValueError("an ensemble needs at least one member")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members predict different window sets: shapes {shapes}")
    return np.mean(arrays, axis=0)


@dataclass
class SubjectPredictions:
    """Every model's probabilities for one held-out subject's windows."""

    subject: str
    y_true: np.ndarray
    trial: np.ndarray | None
    repetitions: list[int]
    members: list[np.ndarray]

    @property
    def ensemble(self) -> np.ndarray:
        return ensemble_probabilities(self.members)


def subject_predictions(records: Iterable[Mapping[str, Any]]) -> dict[str, SubjectPredictions]:
    """Group fold records (``training/folds/<fold>.json``) by held-out subject.

    Raises
    ------
    StoreError
        When a fold has no test predictions or two repetitions of a subject were scored on
        different windows (then they are not one subject's ensemble).
    """
    out: dict[str, SubjectPredictions] = {}
    for rec in records:
        pred = rec.get("predictions")
        if not pred or "proba" not in pred:
            raise StoreError(f"fold {rec.get('name')} has no test predictions; re-run "
                             "`eegcrp train CONFIG --overwrite`")
        subject = str(rec["test_subject"])
        y = np.asarray(pred["y_true"], np.int64)
        trial = np.asarray(pred["trial"]) if pred.get("trial") is not None else None
        entry = out.get(subject)
        if entry is None:
            entry = out[subject] = SubjectPredictions(subject, y, trial, [], [])
        elif not np.array_equal(entry.y_true, y):
            raise StoreError(f"the repetitions of held-out subject {subject} were scored on "
                             "different windows; re-run `eegcrp train CONFIG --overwrite`")
        entry.repetitions.append(int(rec["repetition"]))
        entry.members.append(np.asarray(pred["proba"], np.float64))
    return out


def scores_row(subject: str, model: str, y_true: np.ndarray, proba: np.ndarray,
               n_models: int = 1) -> dict[str, Any]:
    """One ``decoding/scores.csv`` row: the scores of ``proba`` on ``y_true``."""
    scores = fold_metrics(y_true, proba)
    return {"subject": subject, "model": model, "n_models": n_models,
            **{m: scores[m] for m in METRICS}, "n_windows": len(y_true)}


def single_models_row(entry: SubjectPredictions) -> dict[str, Any]:
    """The held-out subject's single-model scores, averaged over its repetitions."""
    rows = pd.DataFrame([scores_row(entry.subject, "eegnet", entry.y_true, p)
                         for p in entry.members])
    return {"subject": entry.subject, "model": "eegnet", "n_models": len(entry.members),
            **{m: float(rows[m].mean()) for m in METRICS}, "n_windows": len(entry.y_true)}

"""Model selection without early stopping: the epoch count chosen by an inner loop.

``training.model_selection: inner_cv`` trains each fold's final model for a fixed number of
epochs. That number comes from the fold's training subjects only: they are split into
``inner_folds`` groups, each group is held out once while a model trains on the others, and
the epoch with the best mean validation score is the one used. The held-out test subject
never takes part.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eegcrp.config import ModelConfig, TrainingConfig
from eegcrp.errors import TrainingError
from eegcrp.models import build_model

from .loop import train_model

__all__: list[str] = []


def subject_key(subject: str) -> int:
    from .loso import subject_key as key

    return key(subject)


def _inner_loop(spec: Any, x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                shape: dict[str, Any], model_config: ModelConfig,
                training_config: TrainingConfig, device: torch.device,
                autocorrelation: np.ndarray | None = None) -> dict[str, Any]:
    """The epoch count of ``model_selection: inner_cv``, from the training subjects only.

    The fold's training subjects are split into ``inner_folds`` groups (by the fold's seed);
    each group is held out once while a model trains ``max_epochs`` epochs on the others,
    recording the monitored validation score of every epoch. The epoch with the best mean
    score (not before ``min_epochs``; ties: the lower mean loss, then the earlier epoch) is
    the number of epochs the fold's model then trains on all its training subjects. The
    test subject is never seen.
    """
    tc = training_config
    subjects = list(spec.train_subjects)
    if len(subjects) < tc.inner_folds:
        raise TrainingError(
            f"fold {spec.name}: {len(subjects)} training subjects cannot form "
            f"{tc.inner_folds} inner folds; lower training.inner_folds or add subjects"
        )
    root = np.random.SeedSequence([int(spec.seed), int(spec.repetition),
                                   subject_key(spec.subject), 1])
    order_ss, *model_ss = root.spawn(tc.inner_folds + 1)
    order = np.random.default_rng(order_ss).permutation(len(subjects))
    parts = [[subjects[i] for i in sorted(part)] for part in
             np.array_split(order, tc.inner_folds)]
    primary, losses = [], []
    for held, ss in zip(parts, model_ss, strict=True):
        rest = [s for s in subjects if s not in held]
        tr = np.flatnonzero(np.isin(groups, rest))
        va = np.flatnonzero(np.isin(groups, held))
        torch_seed, shuffle_ss = ss.spawn(2)
        torch.manual_seed(int(torch_seed.generate_state(1, np.uint64)[0] % (2**63 - 1)))
        model = build_model(model_config, shape["n_channels"], shape["n_times"],
                            shape["n_classes"], shape["sfreq"])
        hist = train_model(model, x[tr], y[tr], x[va], y[va], config=tc,
                           rng=np.random.default_rng(shuffle_ss), n_classes=shape["n_classes"],
                           device=device, early_stopping=False,
                           autocorrelation=None if autocorrelation is None
                           else autocorrelation[tr])
        loss = np.asarray(hist["val_loss"], np.float64)
        score = {"val_balanced_accuracy": -np.asarray(hist["val_balanced_acc"], np.float64),
                 "val_roc_auc": -np.nan_to_num(np.asarray(hist["val_roc_auc"], np.float64))
                 }.get(tc.monitor, loss)
        primary.append(score)
        losses.append(loss)
    mean, mean_loss = np.mean(primary, axis=0), np.mean(losses, axis=0)
    epochs = np.arange(1, len(mean) + 1)
    eligible = epochs >= min(tc.min_epochs, len(epochs))
    best = min(np.flatnonzero(eligible), key=lambda i: (round(float(mean[i]), 12),
                                                         float(mean_loss[i]), i))
    return {"epochs": int(epochs[best]), "groups": parts, "monitor": tc.monitor,
            "mean_score": np.round(mean, 6).tolist(), "mean_loss": np.round(mean_loss, 6).tolist()}

"""Training: the loop of one model (:mod:`.loop`) and the leave-one-subject-out engine
(:mod:`.loso`)."""

from .loop import (
    check_model_input,
    normalize_windows,
    resolve_device,
    retain_freed_memory,
    train_model,
)
from .loso import FoldSpec, LOSOTrainer, fold_seeds, loso_splits

__all__ = [
    "FoldSpec",
    "LOSOTrainer",
    "check_model_input",
    "fold_seeds",
    "loso_splits",
    "normalize_windows",
    "resolve_device",
    "retain_freed_memory",
    "train_model",
]

"""Multi-subject EEG datasets: loaders returning :class:`EEGDataset`."""

from .base import TASKS, BaseLoader, DataError, EEGDataset, make_epochs
from .registry import LOADERS, get_loader, load_dataset

__all__ = [
    "LOADERS",
    "TASKS",
    "BaseLoader",
    "DataError",
    "EEGDataset",
    "get_loader",
    "load_dataset",
    "make_epochs",
]

"""Multi-subject EEG sources: loaders returning per-subject :class:`Recording` objects.

A loader reads one subject's continuous source data plus where the trials lie
(:class:`~eegcrp.data.recording.Recording`); :mod:`eegcrp.preprocessing` filters it and cuts
windows, :meth:`BaseLoader.load` cuts the raw trials into an :class:`EEGDataset`.
"""

from .base import TASKS, BaseLoader, DataError, EEGDataset, make_epochs, make_segment
from .montage import is_bipolar, make_montage, mark_bipolar, set_montage_strict
from .recording import Recording
from .registry import LOADERS, get_loader, load_dataset

__all__ = [
    "LOADERS",
    "TASKS",
    "BaseLoader",
    "DataError",
    "EEGDataset",
    "Recording",
    "get_loader",
    "is_bipolar",
    "load_dataset",
    "make_epochs",
    "make_montage",
    "make_segment",
    "mark_bipolar",
    "set_montage_strict",
]

"""Map a dataset config's ``kind`` to its loader class."""

from __future__ import annotations

import importlib
from typing import Any

from .base import BaseLoader, EEGDataset

__all__ = ["LOADERS", "get_loader", "load_dataset"]

#: ``kind`` -> "module:Class"; modules are imported on demand so optional extras
#: (moabb, pyxdf) are only needed by the loaders that use them.
LOADERS: dict[str, str] = {
    "bciciv2b": "eegcrp.data.bciciv2b:BCIIV2bLoader",
    "eegmmidb": "eegcrp.data.eegmmidb:EEGMMIDBLoader",
    "eegmat": "eegcrp.data.eegmat:EEGMATLoader",
    "kul_aad": "eegcrp.data.kul:KULLoader",
    "moabb": "eegcrp.data.moabb_bridge:MOABBLoader",
    "folder": "eegcrp.data.folder:FolderLoader",
    "bids": "eegcrp.data.bids:BIDSLoader",
    "simulated": "eegcrp.data.simulate:SimulatedLoader",
}


def get_loader(config: Any) -> BaseLoader:
    """Instantiate the loader for a dataset config section."""
    try:
        target = LOADERS[config.kind]
    except KeyError:
        raise ValueError(
            f"unknown dataset kind {config.kind!r}; known: {sorted(LOADERS)}"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(config)


def load_dataset(config: Any, progress: bool = False) -> EEGDataset:
    """Load the raw trial epochs of a dataset config (no preprocessing, no cache)."""
    return get_loader(config).load(progress=progress)

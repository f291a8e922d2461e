"""eegcrp: what did my EEG decoder learn, and does it match known neural correlates?

The entry points a script needs::

    import eegcrp

    config = eegcrp.load_config("configs/eegmat.yaml", ["training.repetitions=1"])
    eegcrp.run_all(config)                       # every stage, then report.html
    ds = eegcrp.load_relevance(config.output_dir)  # xarray.Dataset of concept relevance

Heavy modules (torch, MNE) are imported on first use, so ``import eegcrp`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from .config import StudyConfig, load_config
from .errors import (
    ConfigError,
    DataError,
    EEGCRPError,
    ExplainError,
    StageError,
    StoreError,
    TrainingError,
)
from .io import package_version

__version__ = package_version()

__all__ = [
    "ConfigError",
    "DataError",
    "EEGCRPError",
    "ExplainError",
    "StageError",
    "StoreError",
    "StudyConfig",
    "TrainingError",
    "__version__",
    "load_concepts",
    "load_config",
    "load_relevance",
    "open_relevance",
    "prepare",
    "run_all",
    "run_stage",
    "simulate",
]

_LAZY = {
    "load_concepts": ("eegcrp.concepts", "load_concepts"),
    "load_relevance": ("eegcrp.store", "load_relevance"),
    "open_relevance": ("eegcrp.store", "open_relevance"),
    "prepare": ("eegcrp.preprocessing", "prepare"),
    "run_all": ("eegcrp.stages", "run_all"),
    "run_stage": ("eegcrp.stages", "run_stage"),
    "simulate": ("eegcrp.data.simulate", "simulate"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'eegcrp' has no attribute {name!r}")

"""eegcrp: what did my EEG decoder learn, and does it match known neural correlates?

The entry points a script needs::

    import eegcrp

    config = eegcrp.load_config("configs/eegmat.yaml", ["training.repetitions=1"])
    eegcrp.run_all(config)                       # every stage, then report.html
    ds = eegcrp.load_relevance(config.output_dir)  # xarray.Dataset of concept relevance

Every stage's results are read through one verifying layer (:mod:`eegcrp.results`):
``load_training``, ``load_decoding``, ``open_relevance``/``load_relevance``, ``load_concepts``,
``load_sources``, ``load_regions``, ``load_evaluation``.

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
    "load_decoding",
    "load_evaluation",
    "load_regions",
    "load_relevance",
    "load_sources",
    "load_training",
    "open_relevance",
    "open_stage",
    "prepare",
    "run_all",
    "run_stage",
    "simulate",
]

_LAZY = {
    "load_concepts": ("eegcrp.concepts", "load_concepts"),
    "load_decoding": ("eegcrp.results", "load_decoding"),
    "load_evaluation": ("eegcrp.results", "load_evaluation"),
    "load_regions": ("eegcrp.regions", "load_regions"),
    "load_relevance": ("eegcrp.store", "load_relevance"),
    "load_sources": ("eegcrp.sources", "load_sources"),
    "load_training": ("eegcrp.results", "load_training"),
    "open_relevance": ("eegcrp.store", "open_relevance"),
    "open_stage": ("eegcrp.results", "open_stage"),
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

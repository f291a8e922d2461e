"""The study's stages, run in order; each reads and writes documented on-disk artifacts.

Output folder layout (``config.output_dir``)::

    config.yaml                the validated configuration the run used
    prepare/summary.csv        windows per subject and class, channels, sfreq, window length
    training/                  LOSO metrics, per-fold JSON and checkpoints (stage ``train``)
    explain/                   concept relevance per fold, HDF5 + index.json (stage ``explain``)
    report.html                the HTML report (stage ``report``)

The preprocessing cache lives in ``config.resolved_cache_dir()`` (see
:mod:`eegcrp.preprocessing`). Stages never share state through globals: a later stage
reads what an earlier one wrote, so any stage can be re-run alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

from .config import StudyConfig
from .data.base import EEGDataset
from .io import atomic_path
from .preprocessing import prepare

logger = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "run_stages",
    "save_config",
    "stage_explain",
    "stage_prepare",
    "stage_report",
    "stage_train",
]


def save_config(config: StudyConfig) -> Path:
    """Write the validated configuration to ``<output_dir>/config.yaml``."""
    target = Path(config.output_dir) / "config.yaml"
    with atomic_path(target, ".yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return target


def stage_prepare(config: StudyConfig, progress: bool = True) -> tuple[EEGDataset, pd.DataFrame]:
    """Load + preprocess (cached) and write ``prepare/summary.csv``."""
    dataset = prepare(config, progress=progress)
    summary = dataset.summary()
    target = Path(config.output_dir) / "prepare" / "summary.csv"
    with atomic_path(target, ".csv") as tmp:
        summary.to_csv(tmp)
    return dataset, summary


def stage_report(config: StudyConfig, dataset: EEGDataset | None = None) -> Path:
    """Write ``report.html`` from the results present in the output folder."""
    from .report import build_report

    return build_report(config, dataset)


def stage_train(
    config: StudyConfig, dataset: EEGDataset, progress: bool = True, overwrite: bool = False
) -> pd.DataFrame:
    """Leave-one-subject-out EEGNet training into ``<output_dir>/training/``."""
    from .preprocessing import cache_key
    from .training import LOSOTrainer

    trainer = LOSOTrainer(config.model, config.training).fit(
        dataset, config.output_dir, preprocessing_key=cache_key(config), progress=progress,
        overwrite=overwrite,
    )
    return trainer.metrics_


def stage_explain(
    config: StudyConfig, dataset: EEGDataset, progress: bool = True, overwrite: bool = False
) -> dict:
    """Concept relevance of every trained fold into ``<output_dir>/explain/`` (Pipeline A)."""
    from .crp import run_explain

    return run_explain(config, dataset, progress=progress, overwrite=overwrite)


#: Stages after ``prepare`` and before ``report``, in order:
#: name -> callable(config, dataset, progress, overwrite).
STAGES: dict[str, Callable[..., object]] = {"train": stage_train, "explain": stage_explain}


def run_stages(config: StudyConfig, progress: bool = True, overwrite: bool = False) -> Path:
    """Run every stage in order (prepare, the registered analysis stages, report)."""
    save_config(config)
    dataset, _ = stage_prepare(config, progress=progress)
    for name, stage in STAGES.items():
        logger.info("stage %s", name)
        stage(config, dataset, progress, overwrite)
    return stage_report(config, dataset)

"""Assemble ``report.html`` from whatever stages have produced results."""

from __future__ import annotations

import logging
from pathlib import Path

import mne

from ..config import StudyConfig
from ..data.base import EEGDataset
from ..io import atomic_path
from .data_section import add_data_section

logger = logging.getLogger(__name__)

__all__ = ["build_report"]


def build_report(config: StudyConfig, dataset: EEGDataset | None = None) -> Path:
    """Write ``<output_dir>/report.html`` with a section per finished stage.

    Parameters
    ----------
    config : StudyConfig
        The study; its ``output_dir`` holds the stages' results.
    dataset : EEGDataset | None
        The prepared dataset; read from the preprocessing cache when None.

    Returns
    -------
    Path
        The written report.
    """
    if dataset is None:
        from ..preprocessing import prepare

        dataset = prepare(config, progress=False)
    report = mne.Report(title=f"eegcrp: {config.name}", verbose="error")
    add_data_section(report, dataset, config.explain.bands)
    for add_section in _stage_sections():
        add_section(report, config, dataset)
    target = Path(config.output_dir) / "report.html"
    with atomic_path(target, ".html") as tmp:
        report.save(tmp, overwrite=True, open_browser=False, verbose="error")
    logger.info("report written to %s", target)
    return target


def _stage_sections() -> list:
    """Section builders of the stages, each adding nothing when its results are absent."""
    from .ground_truth_section import add_ground_truth_section
    from .relevance_section import add_relevance_section
    from .training_section import add_training_section

    return [add_ground_truth_section, add_training_section, add_relevance_section]

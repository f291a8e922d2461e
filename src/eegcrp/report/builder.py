"""Assemble ``report.html`` from the stages whose verified results are in the run folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mne

from ..config import StudyConfig
from ..data.base import EEGDataset
from ..io import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["ReportContext", "build_report"]


@dataclass
class ReportContext:
    """What a report section reads: the config, the prepared windows and verified manifests.

    Attributes
    ----------
    config : StudyConfig
    dataset : EEGDataset
        The windows the ``prepare`` manifest lists.
    manifests : dict of str to Manifest
        The verified manifests of the stages that ran, in pipeline order.
    """

    config: StudyConfig
    dataset: EEGDataset
    manifests: dict[str, Any]

    def folder(self, stage: str) -> Path:
        """The output folder of ``stage``."""
        from ..stages.registry import stage_folder

        return stage_folder(self.config, stage)


def build_report(ctx: ReportContext, target: str | Path | None = None) -> Path:
    """Write the report with one section per stage that ran (in pipeline order).

    Parameters
    ----------
    ctx : ReportContext
    target : str | Path | None
        The HTML file (default ``<output_dir>/report.html``).

    Returns
    -------
    Path
        The written report.
    """
    from ..stages.registry import STAGES
    from .summary_section import add_metadata_section, add_summary_section

    report = mne.Report(title=f"eegcrp: {ctx.config.name}", verbose="error")
    add_summary_section(report, ctx)
    for name, manifest in ctx.manifests.items():
        stage = STAGES[name]
        if stage.report is not None and manifest is not None:
            stage.report(report, ctx)
    add_metadata_section(report, ctx)
    target = Path(target) if target is not None else Path(ctx.config.output_dir) / "report.html"
    with atomic_path(target, ".html") as tmp:
        report.save(tmp, overwrite=True, open_browser=False, verbose="error")
    logger.info("report written to %s", target)
    return target

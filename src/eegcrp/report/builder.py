"""Assemble ``report.html`` from the stages whose verified results are in the run folder."""

from __future__ import annotations

import logging
from pathlib import Path

import mne

from ..io import atomic_path
from .context import ReportContext
from .summary_section import add_metadata_section, add_summary_section

logger = logging.getLogger(__name__)

__all__ = ["ReportContext", "build_report"]


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
    report = mne.Report(title=f"eegcrp: {ctx.config.name}", verbose="error")
    add_summary_section(report, ctx)
    for name, draw in ctx.drawers.items():
        if ctx.manifests.get(name) is not None:
            draw(report, ctx)
    add_metadata_section(report, ctx)
    target = Path(target) if target is not None else Path(ctx.config.output_dir) / "report.html"
    with atomic_path(target, ".html") as tmp:
        report.save(tmp, overwrite=True, open_browser=False, verbose="error")
    logger.info("report written to %s", target)
    return target

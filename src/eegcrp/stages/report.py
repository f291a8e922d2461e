"""Stage ``report``: ``<output_dir>/report.html`` from every stage whose results are there.

Every stage present in the run folder is verified against this config before its section is
drawn (:func:`eegcrp.stages.registry.require`): a report never mixes results of different
configurations. On a folder where nothing has run it stops with an error instead of
computing anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import StudyConfig
from ..report.context import ReportContext
from .manifest import Manifest
from .prepare import load_prepared
from .registry import (
    STAGES,
    Stage,
    StageContext,
    register,
    require,
    stage_folder,
    stage_folders,
)

__all__ = ["report_context"]


def report_context(config: StudyConfig) -> ReportContext:
    """A :class:`eegcrp.report.ReportContext` of every stage present, each verified."""
    manifests: dict[str, Any] = {}
    for name in STAGES:
        if name != "report" and Manifest.read(stage_folder(config, name)) is not None:
            manifests[name] = require(name, config)
    return ReportContext(
        config, load_prepared(require("prepare", config)), manifests,
        folders=stage_folders(config),
        drawers={name: s.report for name, s in STAGES.items() if s.report is not None})


def _run(ctx: StageContext) -> Path:
    from ..report.builder import build_report

    rctx = report_context(ctx.config)
    path = build_report(rctx)
    ctx.manifest.add_product(ctx.folder, "../report.html")
    ctx.manifest.extra = {"sections": list(rctx.manifests),
                          "inputs": {k: m.digest for k, m in rctx.manifests.items()}}
    return path


STAGE = register(Stage(
    name="report",
    help="write report.html from the stages' results",
    folder="report",
    sections=(),
    requires=("prepare",),
    run=_run,
    runs_missing=False,
    describe=lambda path, config: f"report: {Path(path).resolve()}",
))

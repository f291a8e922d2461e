"""What every report section reads (:class:`ReportContext`), built by the report stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the report never imports the stages
    import mne

    from ..config import StudyConfig
    from ..data.base import EEGDataset

__all__ = ["ReportContext", "SectionDrawer"]

#: A stage's section: ``drawer(report, ctx)`` adds it to the report.
SectionDrawer = Callable[["mne.Report", "ReportContext"], None]


@dataclass
class ReportContext:
    """The config, the prepared windows and the verified manifests a section reads.

    Built by :func:`eegcrp.stages.report.report_context`, which also hands over where each
    stage's folder is and each stage's section drawer, so that the report package needs no
    knowledge of the stage registry.

    Attributes
    ----------
    config : StudyConfig
    dataset : EEGDataset | None
        The windows the ``prepare`` manifest lists.
    manifests : dict of str to Manifest
        The verified manifests of the stages that ran, in pipeline order.
    folders : dict of str to Path
        Every stage's output folder.
    drawers : dict of str to SectionDrawer
        The section of each stage that has one, in pipeline order.
    """

    config: StudyConfig
    dataset: EEGDataset | None
    manifests: dict[str, Any]
    folders: Mapping[str, Path] = field(default_factory=dict)
    drawers: Mapping[str, SectionDrawer] = field(default_factory=dict)

    def folder(self, stage: str) -> Path:
        """The output folder of ``stage``."""
        if stage not in self.folders:
            raise KeyError(f"no folder of stage {stage!r} in this report context; build it "
                           "with eegcrp.stages.report.report_context(config)")
        return Path(self.folders[stage])

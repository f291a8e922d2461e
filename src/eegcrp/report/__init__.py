"""HTML report (MNE :class:`mne.Report`) assembled from the stages' verified results."""

from .builder import build_report
from .context import ReportContext

__all__ = ["ReportContext", "build_report"]

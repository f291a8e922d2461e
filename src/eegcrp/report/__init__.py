"""HTML report (MNE :class:`mne.Report`) assembled from the stages' verified results."""

from .builder import ReportContext, build_report

__all__ = ["ReportContext", "build_report"]

"""HTML report (MNE :class:`mne.Report`) assembled from the stages' on-disk outputs."""

from .builder import build_report
from .data_section import DEFAULT_BANDS, add_data_section

__all__ = ["DEFAULT_BANDS", "add_data_section", "build_report"]

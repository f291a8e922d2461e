"""Reading the results of the ``sources`` stage (:func:`load_sources`).

Layout of ``<output_dir>/sources/`` (every file listed in its ``manifest.json``):

=======================  ===================================================================
``ica/sub-<id>.nc``      per subject (netCDF-4, dims component, channel, iclabel_class):
                         ``unmixing`` (K, C), ``mixing`` (C, K, the component
                         topographies in volts), ``mean`` (C,), ``probabilities`` (K, 7,
                         ICLabel order), ``label`` (K), ``explained_variance`` (K,);
                         attributes ``subject``, ``meta`` (method, seed, iterations, rank,
                         band, notes), ``identity``
``folds/<fold>.nc``      per explain fold: relevance per component, residual, band and
                         category of every selected heatmap (:mod:`eegcrp.sources.folds`)
``units.csv``            relevance per unit (filter key, class, window subject), weighting,
                         measure and category, with the unit's number of windows
``shares.csv``           per group (each class and ``all``), weighting, measure, category:
                         mean share over subjects, bootstrap interval, subjects
``subject_shares.csv``   the same per subject
``components.csv``       per subject and component: label, probabilities, explained
                         variance, relevance per class (signed, positive, absolute)
=======================  ===================================================================

Subjects whose ICA failed (did not converge) are listed in the manifest's
``extra["failed"]`` with the reason; their windows are left out of every share.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ..errors import StoreError
from ..netcdf import read_netcdf
from .ica import SubjectICA
from .shares import group_shares

__all__ = ["SourcesRun", "load_sources"]


class SourcesRun:
    """The finished results of a ``sources`` stage (see the module docstring)."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"SourcesRun({self.folder}: {len(self.subjects)} subjects)"

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.manifest.get("extra", {}))

    @property
    def skipped(self) -> str | None:
        """Why the stage did nothing (``sources.enabled`` false), else None."""
        return self.extra.get("skipped")

    @property
    def subjects(self) -> list[str]:
        """Subjects with a decomposition."""
        return sorted(self.extra.get("subjects", {}))

    @property
    def failed(self) -> dict[str, str]:
        """Subject -> why its ICA failed."""
        return dict(self.extra.get("failed", {}))

    def _csv(self, name: str) -> pd.DataFrame:
        if name not in self.manifest.get("products", {}):
            raise StoreError(f"{name} is not among the results in {self.folder} "
                             f"({'skipped: ' + self.skipped if self.skipped else 'not listed'})")
        return pd.read_csv(self.folder / name, keep_default_na=True)

    @property
    def units(self) -> pd.DataFrame:
        """The unit table (:func:`eegcrp.sources.shares.unit_table`), all folds."""
        return self._csv("units.csv")

    @property
    def shares(self) -> pd.DataFrame:
        """Category shares per class and over all classes, with bootstrap intervals."""
        return self._csv("shares.csv")

    @property
    def subject_shares(self) -> pd.DataFrame:
        return self._csv("subject_shares.csv")

    @property
    def components(self) -> pd.DataFrame:
        return self._csv("components.csv")

    def ica(self, subject: str) -> SubjectICA:
        """The decomposition and labels of one subject."""
        rec = self.extra.get("subjects", {}).get(str(subject))
        if rec is None:
            raise KeyError(f"no ICA of subject {subject!r}; subjects: {self.subjects}, "
                           f"failed: {sorted(self.failed)}")
        return SubjectICA.load(self.folder / rec["file"])

    def fold_files(self) -> list[Path]:
        """The per-fold files, in the explain store's fold order."""
        folds = self.extra.get("folds", {})
        return [self.folder / folds[name]["file"] for name in self.extra.get("order", folds)]

    def fold(self, name: str) -> xr.Dataset:
        """One fold's component relevance (layout in :mod:`eegcrp.sources.folds`)."""
        folds = self.extra.get("folds", {})
        if name not in folds:
            raise KeyError(f"no sources fold {name!r}; folds: {sorted(folds)}")
        return read_netcdf(self.folder / folds[name]["file"])

    def category_spectra(self) -> tuple[Any, dict[tuple[int, str], Any]]:
        """Relevance per DFT bin of each ICLabel category, per class index
        (:func:`eegcrp.sources.folds.category_spectra`)."""
        from .folds import category_spectra

        return category_spectra(self.fold_files(), {s: self.ica(s) for s in self.subjects})

    def shares_by(self, groups: Mapping[Any, str] | None) -> pd.DataFrame:
        """:func:`eegcrp.sources.shares.group_shares` of this run's units with its settings."""
        cfg = self.manifest.get("config", {}).get("sources", {})
        return group_shares(self.units, groups, n_boot=int(cfg.get("n_boot", 2000)),
                            ci=float(cfg.get("ci", 0.95)), seed=int(cfg.get("seed") or 0))


def load_sources(run_dir: str | Path) -> SourcesRun:
    """Open the results of the ``sources`` stage (``<output_dir>/sources`` or ``output_dir``).

    Raises
    ------
    StoreError
        When the folder holds no finished sources stage.
    """
    from ..results import open_stage

    return SourcesRun(*open_stage(run_dir, "sources"))

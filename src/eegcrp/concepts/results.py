"""Writing the concepts stage's products atomically, and reading them back
(:func:`load_concepts`; the schema is in the :mod:`eegcrp.concepts` docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ..io import write_csv_atomic
from ..netcdf import read_netcdf, write_netcdf

__all__ = ["PRODUCTS", "Concepts", "load_concepts", "write_concepts"]

#: The product files, relative to the stage folder.
PRODUCTS = ("filters.csv", "clusters.csv", "stability.csv", "agreement.csv", "clusters.nc")

#: Column dtypes restored on reading (CSV loses them).
_DTYPES = {"subject": str, "fold": str, "key": str, "class": str, "cluster": str,
           "cluster_pooled": str, "cluster_rep": str, "matched": str, "excluded": str,
           "representatives": str, "stability": str, "kind": str, "scope": str,
           "cluster_id": str, "fold_a": str, "fold_b": str, "layer": str}
_BOOLEAN = ("stable", "shared", "valid")


def _write_csv(frame: pd.DataFrame, target: Path) -> None:
    write_csv_atomic(target, frame)


def write_concepts(result: Any, folder: str | Path) -> list[str]:
    """Write a :class:`~eegcrp.concepts.pipeline.ConceptsResult` into ``folder`` (each file
    atomically); returns the written paths relative to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_csv(result.filters, folder / "filters.csv")
    _write_csv(result.clusters, folder / "clusters.csv")
    _write_csv(result.stability, folder / "stability.csv")
    _write_csv(result.agreement, folder / "agreement.csv")
    write_netcdf(result.arrays, folder / "clusters.nc")
    return list(PRODUCTS)


def read_arrays(path: str | Path) -> xr.Dataset:
    """The per-cluster arrays file as an :class:`xarray.Dataset` (loaded, file closed)."""
    return read_netcdf(path)


def _read_csv(path: Path) -> pd.DataFrame:
    head = pd.read_csv(path, nrows=0)
    frame = pd.read_csv(path, dtype={k: v for k, v in _DTYPES.items() if k in head.columns},
                        keep_default_na=True)
    for col in _DTYPES:
        if col in frame.columns:
            frame[col] = frame[col].fillna("")
    if "repetition" in frame.columns:
        frame["repetition"] = frame["repetition"].astype("Int64")
    for col in _BOOLEAN:
        if col in frame.columns:
            frame[col] = frame[col].map({True: True, False: False, "True": True,
                                         "False": False}).astype("boolean")
    return frame


@dataclass
class Concepts:
    """The concepts stage's results (see :mod:`eegcrp.concepts` for every column).

    Attributes
    ----------
    filters : DataFrame
        One row per filter key x class.
    clusters : DataFrame
        One row per cluster (and "NC", "all") of every clustering.
    stability : DataFrame
        One row per class x repetition (and the pooled clustering).
    agreement : DataFrame
        One row per class x pair of fold models ("same"/"different").
    arrays : xarray.Dataset
        Per-cluster topographies, spectra and centroids (dim ``cluster`` = ``cluster_id``).
    manifest : dict
        The stage manifest (``extra`` holds the settings used and a summary).
    folder : Path
    """

    filters: pd.DataFrame
    clusters: pd.DataFrame
    stability: pd.DataFrame
    agreement: pd.DataFrame
    arrays: xr.Dataset
    manifest: dict[str, Any]
    folder: Path

    def pooled(self, cls: str | None = None) -> pd.DataFrame:
        """The pooled clustering's real clusters (no NC, no "all"), optionally of one class."""
        c = self.clusters
        mask = (c["scope"] == "pooled") & (c["label"] >= 0)
        if cls is not None:
            mask &= c["class"] == cls
        return c[mask]

    def pooled_groups(self) -> dict[tuple[str, str], str]:
        """``(filter key, class) -> "<class>/<pooled cluster>"`` of every filter in a real
        pooled cluster (noise and excluded filters left out): groups for
        :func:`eegcrp.sources.group_shares`."""
        f = self.filters
        kept = f[~f["cluster_pooled"].isin(["NC", "excluded"])]
        return {(str(k), str(c)): f"{c}/{g}" for k, c, g in
                zip(kept["key"], kept["class"], kept["cluster_pooled"], strict=True)}


def load_concepts(run_dir: str | Path) -> Concepts:
    """Read the concepts stage's results.

    Parameters
    ----------
    run_dir : str | Path
        ``<output_dir>/concepts`` or the study's ``output_dir``.

    Raises
    ------
    StoreError
        When the folder holds no finished concepts stage or a listed file is missing.
    """
    from ..results import open_stage

    folder, manifest = open_stage(run_dir, "concepts", required=PRODUCTS)
    return Concepts(
        filters=_read_csv(folder / "filters.csv"), clusters=_read_csv(folder / "clusters.csv"),
        stability=_read_csv(folder / "stability.csv"),
        agreement=_read_csv(folder / "agreement.csv"),
        arrays=read_arrays(folder / "clusters.nc"), manifest=manifest, folder=folder,
    )

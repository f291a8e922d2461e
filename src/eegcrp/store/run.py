"""Reading an explain run: the folds its manifest lists, stacked as xarray objects."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from eegcrp.errors import StoreError

from ..relevance.spectral import band_mean, band_sum
from ..results import open_stage
from .fold import _SUMMARY_DIMS, DEFAULT_VARIABLES, SUMMARIES, FilterKey, FoldRelevance

logger = logging.getLogger(__name__)

__all__ = ["RelevanceRun", "load_relevance", "open_relevance"]


class RelevanceRun:
    """The folds of an explain run that its manifest lists.

    Attributes
    ----------
    run_dir : Path
        The explain folder.
    manifest : dict
        The explain manifest (``extra`` holds folds, channels, ground truth).
    folds : list of FoldRelevance
        In repetition, then subject order.
    stale : list of Path
        Fold files present but not listed (ignored).
    """

    def __init__(self, run_dir: Path, manifest: dict[str, Any], folds: list[FoldRelevance],
                 stale: list[Path]) -> None:
        self.run_dir = run_dir
        self.manifest = manifest
        self.folds = folds
        self.stale = stale

    def __repr__(self) -> str:
        return f"RelevanceRun({self.run_dir}: {len(self.folds)} folds, layer {self.layer})"

    # ------------------------------------------------------------------ metadata
    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.manifest.get("extra", {}))

    @property
    def meta(self) -> dict[str, Any]:
        """Settings shared by the folds (the first fold's attributes) and the frequencies."""
        out = dict(self.folds[0].attrs) if self.folds else {}
        if self.folds:
            out["freqs"] = self.folds[0].freqs
        return out

    @property
    def layer(self) -> str:
        return str(self.meta.get("layer", self.extra.get("layer", "")))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.folds]

    @property
    def classes(self) -> list[str]:
        return list(self.extra.get("classes") or self.meta.get("classes", []))

    @property
    def channels(self) -> dict[str, Any]:
        """``names``, ``positions`` (m, None where unknown) and ``bipolar`` of the channels."""
        return dict(self.extra.get("channels") or {})

    @property
    def ground_truth(self) -> dict[str, Any] | None:
        """The simulator's ground truth, when the data were simulated."""
        return self.extra.get("ground_truth")

    @property
    def bands(self) -> dict[str, tuple[float, float]]:
        bands = self.meta.get("bands") or {}
        return {k: (float(v[0]), float(v[1])) for k, v in bands.items()}

    def fold(self, key: int | str | tuple[int, str]) -> FoldRelevance:
        """A fold by position, name (``rep00_sub-S01``) or (repetition, subject)."""
        if isinstance(key, int):
            return self.folds[key]
        if isinstance(key, tuple):
            key = f"rep{int(key[0]):02d}_sub-{key[1]}"
        for fold in self.folds:
            if fold.name == key:
                return fold
        raise KeyError(f"no fold {key!r}; folds: {self.names}")

    def filter_keys(self) -> list[FilterKey]:
        """Every filter of every fold model, by its global key."""
        return [fold.key(f) for fold in self.folds for f in range(fold.n_filters)]

    # ------------------------------------------------------------------ arrays
    def to_dataset(self, variables: Sequence[str] | None = None) -> xr.Dataset:
        """The per-(fold, class, filter) summaries stacked over folds (see module docstring).

        Parameters
        ----------
        variables : sequence of str | None
            Summaries to load (default :data:`DEFAULT_VARIABLES`; ``heatmap_mean`` and
            ``tf_relevance_sum`` only when asked for, they are large).
        """
        if not self.folds:
            raise StoreError(f"no folds in {self.run_dir}")
        names = list(DEFAULT_VARIABLES if variables is None else variables)
        unknown = [n for n in names if n not in _SUMMARY_DIMS]
        if unknown:
            raise KeyError(f"unknown summaries {unknown}; use some of {list(SUMMARIES)}")
        first = self.folds[0]
        data: dict[str, Any] = {}
        for name in names:
            parts = []
            for fold in self.folds:
                with fold.open() as f:
                    if name not in f["summary"]:
                        raise KeyError(f"{name} was not stored (explain.short_time: false?)")
                    parts.append(f["summary"][name][()])
            data[name] = (("fold", *_SUMMARY_DIMS[name]), np.stack(parts))
        coords: dict[str, Any] = {k: v for k, v in first.coords().items()
                                  if any(k in _SUMMARY_DIMS[n] for n in names)}
        coords["fold"] = self.names
        coords["repetition"] = ("fold", [f.repetition for f in self.folds])
        coords["subject"] = ("fold", [f.subject for f in self.folds])
        positions = self.channels.get("positions")
        if positions and all(p is not None for p in positions) and "channel" in coords:
            coords["ch_pos"] = (("channel", "xyz"), np.asarray(positions, np.float64))
            coords["xyz"] = ["x", "y", "z"]
        meta = self.meta
        attrs = {k: meta[k] for k in ("layer", "composite", "init", "first_layer_rule",
                                      "zero_bias", "selection", "share", "top_k", "rank_by",
                                      "select_from", "by_class", "correctness", "sfreq",
                                      "n_times") if k in meta}
        attrs["bands"] = json.dumps({k: list(v) for k, v in self.bands.items()})
        attrs["bipolar"] = int(bool(self.channels.get("bipolar", False)))
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def band_relevance(self, bands: Mapping[str, tuple[float, float]] | None = None
                       ) -> xr.DataArray:
        """Relevance summed over each filter's selection and each band's bins:
        (fold, class, filter, channel, band)."""

        return self._bands("spectral_relevance_sum", band_sum, bands)

    def band_power(self, bands: Mapping[str, tuple[float, float]] | None = None
                   ) -> xr.DataArray:
        """Mean power per band of each filter's selected windows:
        (fold, class, filter, channel, band)."""

        return self._bands("power_mean", band_mean, bands)

    def _bands(self, name: str, func: Any, bands: Mapping[str, tuple[float, float]] | None
               ) -> xr.DataArray:
        spec = self.to_dataset([name])[name]
        values, names = func(spec.values, spec["freq"].values, bands or self.bands)
        coords = {k: v for k, v in spec.coords.items() if "freq" not in v.dims}
        coords["band"] = names
        return xr.DataArray(values, dims=(*spec.dims[:-1], "band"), coords=coords, name=name)

    def table(self) -> pd.DataFrame:
        """One row per fold x class x filter with its global key, selection size, relevance
        totals and share."""
        ds = self.to_dataset(["n_selected", "total_relevance", "total_abs_relevance",
                              "selected_share"])
        frame = ds.to_dataframe().reset_index()
        frame["layer"] = self.layer
        frame["key"] = [FilterKey(int(r), s, self.layer, int(f)).id for r, s, f in
                        zip(frame["repetition"], frame["subject"], frame["filter"],
                            strict=True)]
        return frame

    def conservation(self) -> pd.DataFrame:
        """Per fold: ``conservation_upper`` = sum |layer relevance - start| / sum |start| over
        windows and classes; ``conservation_lower`` = the same for each selected heatmap's
        total against its filter's relevance; ``layer_over_logit`` and ``input_over_layer``:
        5th percentile, median and 95th percentile of those ratios; ``n_flagged``: selected
        heatmaps off their filter's relevance by more than ``conservation_tolerance``."""
        keys = ("conservation_upper", "conservation_lower", "layer_over_logit",
                "input_over_layer", "n_flagged", "conservation_tolerance", "zero_bias",
                "composite", "init", "n_samples", "n_pairs")
        # where and how long a fold ran is no result: the manifest has it, the file does not
        runs = self.extra.get("folds", {})
        ran = ("wall_time_s", "threads", "device")
        return pd.DataFrame([{"fold": f.name, **{k: f.attrs.get(k) for k in keys},
                              **{k: runs.get(f.name, {}).get(k) for k in ran}}
                             for f in self.folds])


def open_relevance(run_dir: str | Path) -> RelevanceRun:
    """Open an explain run (``<output_dir>/explain`` or the study's ``output_dir``).

    Only the fold files the manifest lists are opened; unlisted files are stale (logged and
    listed in :attr:`RelevanceRun.stale`).

    Raises
    ------
    StoreError
        When the folder holds no finished explain stage or a listed file is missing.
    """

    run_dir, manifest = open_stage(run_dir, "explain")
    extra = manifest.get("extra", {})
    order = extra.get("order") or list(extra.get("folds", {}))
    listed = {p for p in manifest.get("products", {}) if p.startswith("folds/")}
    folds = []
    for name in order:
        rec = extra["folds"].get(name, {})
        relative = f"folds/{rec.get('file', name + '.h5')}"
        if relative not in listed:
            continue
        folds.append(FoldRelevance(run_dir / relative))
    present = {p.relative_to(run_dir).as_posix()
               for p in (run_dir / "folds").glob("*.h5")} if (run_dir / "folds").is_dir() \
        else set()
    stale = sorted(run_dir / p for p in present - listed)
    if stale:
        logger.warning("%d fold file(s) in %s are not in its manifest and are ignored: %s",
                       len(stale), run_dir, ", ".join(p.name for p in stale[:5]))
    return RelevanceRun(run_dir, manifest, folds, stale)


def load_relevance(run_dir: str | Path, variables: Sequence[str] | None = None) -> xr.Dataset:
    """The explain run's per-(fold, class, filter) summaries as an :class:`xarray.Dataset`.

    Parameters
    ----------
    run_dir : str | Path
        ``<output_dir>/explain`` or the study's ``output_dir``.
    variables : sequence of str | None
        Summaries to load (default :data:`DEFAULT_VARIABLES`).

    Examples
    --------
    >>> ds = load_relevance("results/demo")
    >>> ds.total_relevance.sel({"class": "left_hand"}).mean("fold")
    """
    return open_relevance(run_dir).to_dataset(variables)

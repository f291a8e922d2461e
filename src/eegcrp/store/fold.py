"""Reading one fold file of the explain store lazily, and the global filter key."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from eegcrp.errors import StoreError

__all__ = ["DEFAULT_VARIABLES", "SUMMARIES", "FilterKey", "FoldRelevance", "read_fold_attrs"]


# --------------------------------------------------------------------------- keys
@dataclass(frozen=True, order=True)
class FilterKey:
    """The global identity of a filter: (repetition, held-out subject, layer, filter)."""

    repetition: int
    subject: str
    layer: str
    filter: int

    @property
    def fold(self) -> str:
        """Name of the fold model the filter belongs to (``rep00_sub-S01``)."""
        return f"rep{self.repetition:02d}_sub-{self.subject}"

    @property
    def id(self) -> str:
        """``rep00/S01/b2_conv2/3``: unique across every fold of a study."""
        return f"rep{self.repetition:02d}/{self.subject}/{self.layer}/{self.filter}"

    @classmethod
    def parse(cls, text: str) -> FilterKey:
        """Inverse of :attr:`id`."""
        try:
            rep, subject, layer, filt = text.split("/")
            return cls(int(rep.removeprefix("rep")), subject, layer, int(filt))
        except ValueError:
            raise ValueError(f"{text!r} is not a filter key like 'rep00/S01/b2_conv2/3'") \
                from None



_JSON_ATTRS = ("subjects", "classes", "ch_names", "bands", "input_bounds", "layer_over_logit",
               "input_over_layer")


def _decode(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        if key in _JSON_ATTRS and isinstance(value, str) and value:
            value = json.loads(value)
        out[key] = value
    return out


def read_fold_attrs(path: str | Path) -> dict[str, Any]:
    """Metadata of a fold file (JSON attributes decoded)."""
    with h5py.File(path, "r") as f:
        return _decode(f.attrs)


_SUMMARY_DIMS: dict[str, tuple[str, ...]] = {
    "n_selected": ("class", "filter"),
    "total_relevance": ("class", "filter"),
    "total_abs_relevance": ("class", "filter"),
    "selected_share": ("class", "filter"),
    "activation_mean": ("class", "filter", "layer_time"),
    "relevance_mean": ("class", "filter", "layer_time"),
    "heatmap_mean": ("class", "filter", "channel", "time"),
    "spectral_relevance_sum": ("class", "filter", "channel", "freq"),
    "spectrum_mean": ("class", "filter", "channel", "freq"),
    "power_mean": ("class", "filter", "channel", "freq"),
    "tf_relevance_sum": ("class", "filter", "channel", "tf_time", "tf_freq"),
}

_PAIR_DIMS: dict[str, tuple[str, ...]] = {
    "heatmaps": ("sample", "channel", "time"),
    "spectral_relevance": ("sample", "channel", "freq"),
    "spectra": ("sample", "channel", "freq"),
    "relevance_time": ("sample", "layer_time"),
    "activation_time": ("sample", "layer_time"),
    "heatmap_total": ("sample",),
    "tf_relevance": ("sample", "channel", "tf_time", "tf_freq"),
    "tf_spectra": ("sample", "channel", "tf_time", "tf_freq"),
}

#: Names of the per-(class, filter) summaries.
SUMMARIES = tuple(_SUMMARY_DIMS)
#: Summaries :func:`load_relevance` loads by default (not the large heatmap/TF means).
DEFAULT_VARIABLES = tuple(k for k in SUMMARIES if k not in ("heatmap_mean", "tf_relevance_sum"))


class FoldRelevance:
    """Lazy reader of one fold file: every method opens the file and reads only its slice."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"fold file {self.path} does not exist; run `eegcrp explain`")
        try:
            self.attrs = read_fold_attrs(self.path)
            with h5py.File(self.path, "r") as f:
                self.freqs = f["coords/freqs"][()]
                self._tf = ((f["coords/tf_times"][()], f["coords/tf_freqs"][()])
                            if "coords/tf_times" in f else None)
                self._offsets = f["summary/offsets"][()]
                self._n_layer_time = int(f["summary/activation_mean"].shape[-1])
        except (OSError, KeyError) as exc:
            raise StoreError(f"{self.path} is not a readable fold file ({exc}); re-run "
                             "`eegcrp explain` (it recomputes damaged folds)") from exc

    def __repr__(self) -> str:
        return (f"FoldRelevance({self.name}: layer {self.layer}, {self.attrs.get('n_pairs')} "
                "selected windows)")

    # ------------------------------------------------------------------ metadata
    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def repetition(self) -> int:
        return int(self.attrs["repetition"])

    @property
    def subject(self) -> str:
        return str(self.attrs["subject"])

    @property
    def layer(self) -> str:
        return str(self.attrs["layer"])

    @property
    def classes(self) -> list[str]:
        return list(self.attrs["classes"])

    @property
    def ch_names(self) -> list[str]:
        return list(self.attrs["ch_names"])

    @property
    def sfreq(self) -> float:
        return float(self.attrs["sfreq"])

    @property
    def n_times(self) -> int:
        return int(self.attrs["n_times"])

    @property
    def n_filters(self) -> int:
        return int(self.attrs["n_filters"])

    def key(self, filt: int) -> FilterKey:
        """The global key of filter ``filt`` of this fold's model."""
        return FilterKey(self.repetition, self.subject, self.layer, int(filt))

    def coords(self) -> dict[str, Any]:
        """Coordinates of every dimension used by this fold's arrays."""
        n_lt = self._n_layer_time
        coords: dict[str, Any] = {
            "class": self.classes,
            "filter": np.arange(self.n_filters),
            "channel": self.ch_names,
            "time": np.arange(self.n_times) / self.sfreq,
            "layer_time": np.arange(n_lt) * (self.n_times / max(n_lt, 1)) / self.sfreq,
            "freq": self.freqs,
        }
        if self._tf is not None:
            coords["tf_time"], coords["tf_freq"] = self._tf
        return coords

    def open(self) -> h5py.File:
        """The fold file opened read-only (the store's own readers use it; other modules
        read through :meth:`pairs`, :meth:`pair_rows`, :meth:`pair_batches`,
        :meth:`summary`, which keep the layout in this module)."""
        return h5py.File(self.path, "r")

    def _class(self, cls: int | str) -> int:
        if isinstance(cls, str):
            if cls not in self.classes:
                raise KeyError(f"no class {cls!r}; classes: {self.classes}")
            return self.classes.index(cls)
        return int(cls)

    def _rows(self, cls: int | str, filt: int) -> slice:
        c, f = self._class(cls), int(filt)
        if not 0 <= f < self.n_filters:
            raise KeyError(f"filter {filt} out of range 0..{self.n_filters - 1}")
        k = c * self.n_filters + f
        return slice(int(self._offsets[k]), int(self._offsets[k + 1]))

    # ------------------------------------------------------------------ data
    def samples(self) -> pd.DataFrame:
        """One row per candidate window: subject, trial, onset, y, pred, correct, logits."""
        with self.open() as f:
            g = f["samples"]
            out = {k: g[k][()] for k in ("subject", "trial", "onset", "y", "pred")}
            logits = g["logits"][()]
        out["subject"] = np.array([s.decode() if isinstance(s, bytes) else str(s)
                                   for s in out["subject"]], dtype=object)
        frame = pd.DataFrame(out)
        frame["correct"] = frame["y"] == frame["pred"]
        for k, name in enumerate(self.classes):
            frame[f"logit_{name}"] = logits[:, k]
        return frame

    def filter_relevance(self) -> xr.DataArray:
        """Every filter's total relevance in every window, per explained class."""
        with self.open() as f:
            values = f["samples/filter_relevance"][()]
        return xr.DataArray(values, dims=("class", "sample", "filter"),
                            coords={"class": self.classes, "filter": np.arange(self.n_filters)},
                            name="filter_relevance")

    def pairs(self) -> pd.DataFrame:
        """The selection table: class, filter, sample, rank, relevance per row."""
        with self.open() as f:
            g = f["pairs"]
            out = {k: g[k][()] for k in ("class", "filter", "sample", "relevance")}
            # files written before ranks were stored rank every row 0
            out["rank"] = g["rank"][()] if "rank" in g else np.zeros(len(out["sample"]), int)
        return pd.DataFrame(out)[["class", "filter", "sample", "rank", "relevance"]]

    def _pair_dataset(self, f: h5py.File, name: str) -> h5py.Dataset:
        if name not in _PAIR_DIMS:
            raise KeyError(f"unknown array {name!r}; use one of {list(_PAIR_DIMS)}")
        if name not in f["pairs"]:
            raise KeyError(f"{name} was not stored (explain.short_time: false?)")
        return f["pairs"][name]

    def pair_rows(self, name: str, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """A per-pair array (see :meth:`pair_array`) at rows of :meth:`pairs` (increasing
        indices or a slice; None: every row)."""
        with self.open() as f:
            data = self._pair_dataset(f, name)
            if rows is None:
                return data[()]
            if isinstance(rows, slice):
                return data[rows]
            rows = np.asarray(rows, np.int64)
            if len(rows) and np.any(np.diff(rows) <= 0):
                raise ValueError("rows must be strictly increasing (HDF5 point selection)")
            return data[rows] if len(rows) else data[0:0]

    def pair_batches(self, name: str, batch: int) -> Iterator[tuple[slice, np.ndarray]]:
        """``(rows, values)`` of a per-pair array in consecutive batches of ``batch`` rows,
        with the file opened once (for arrays too large to read at once)."""
        with self.open() as f:
            data = self._pair_dataset(f, name)
            for start in range(0, data.shape[0], batch):
                rows = slice(start, min(start + batch, data.shape[0]))
                yield rows, data[rows]

    def selection(self, cls: int | str, filt: int) -> pd.DataFrame:
        """Selected windows of one (class, filter), highest-ranked first.

        Columns: ``sample`` (row of :meth:`samples`), ``subject``, ``trial``, ``onset``,
        ``relevance`` (the filter's total relevance there), ``row`` (in ``pairs``).
        """
        rows = self._rows(cls, filt)
        samples = self.samples()
        with self.open() as f:
            sample = f["pairs/sample"][rows]
            relevance = f["pairs/relevance"][rows]
        picked = samples.iloc[sample]
        return pd.DataFrame({"sample": sample, "subject": picked["subject"].to_numpy(),
                             "trial": picked["trial"].to_numpy(),
                             "onset": picked["onset"].to_numpy(), "relevance": relevance,
                             "row": np.arange(rows.start, rows.stop)})

    def pair_array(self, name: str, cls: int | str, filt: int) -> xr.DataArray:
        """One per-pair array (``heatmaps``, ``spectral_relevance``, ``spectra``,
        ``relevance_time``, ``activation_time``, ``tf_relevance``, ``tf_spectra``) for the
        selected windows of (class, filter), read lazily."""
        if name not in _PAIR_DIMS:
            raise KeyError(f"unknown array {name!r}; use one of {list(_PAIR_DIMS)}")
        rows = self._rows(cls, filt)
        with self.open() as f:
            if name not in f["pairs"]:
                raise KeyError(f"{name} was not stored (explain.short_time: false?)")
            values = f["pairs"][name][rows]
            sample = f["pairs/sample"][rows]
        coords = {k: v for k, v in self.coords().items() if k in _PAIR_DIMS[name]}
        coords["sample"] = sample
        return xr.DataArray(values, dims=_PAIR_DIMS[name], coords=coords, name=name)

    def heatmaps(self, cls: int | str, filt: int) -> xr.DataArray:
        """Conditional input heatmaps (sample, channel, time) of the selected windows."""
        return self.pair_array("heatmaps", cls, filt)

    def spectral_relevance(self, cls: int | str, filt: int) -> xr.DataArray:
        """DFT relevance (sample, channel, freq) of the selected windows."""
        return self.pair_array("spectral_relevance", cls, filt)

    def spectra(self, cls: int | str, filt: int) -> xr.DataArray:
        """Orthonormal amplitude spectra (sample, channel, freq) of the selected windows."""
        return self.pair_array("spectra", cls, filt)

    def summary(self, name: str) -> xr.DataArray:
        """One per-(class, filter) summary of this fold (see :data:`SUMMARIES`)."""
        if name not in _SUMMARY_DIMS:
            raise KeyError(f"unknown summary {name!r}; use one of {list(_SUMMARY_DIMS)}")
        with self.open() as f:
            if name not in f["summary"]:
                raise KeyError(f"{name} was not stored (explain.short_time: false?)")
            values = f["summary"][name][()]
        dims = _SUMMARY_DIMS[name]
        return xr.DataArray(values, dims=dims, name=name,
                            coords={k: v for k, v in self.coords().items() if k in dims})



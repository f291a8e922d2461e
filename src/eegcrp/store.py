"""Results store of the explain stage: one HDF5 file per fold plus a run index.

Layout
------
``<output_dir>/explain/index.json`` lists the folds and the settings; each fold
(repetition x held-out subject) has ``folds/rep{r:02d}_sub-{s}.h5``:

============================  ==================================================================
``/`` attributes              layer, composite, first-layer rule, zero_bias, selection rule,
                              classes, channel names, sfreq, n_times, bands (JSON), model hash,
                              explain hash, conservation errors and ratios, timing
``samples/``                  every candidate window: ``subject``, ``window`` (index within the
                              subject), ``y``, ``pred``, ``logits`` (n, K), ``filter_relevance``
                              (K, n, F): each filter's total relevance per class
``pairs/``                    one row per selected (class, filter, window), sorted by class,
                              filter and rank: ``class``, ``filter``, ``sample``, ``rank``,
                              ``relevance``, ``heatmaps`` (P, C, T), ``spectral_relevance`` and
                              ``spectra`` (P, C, bins), ``relevance_time`` and
                              ``activation_time`` (P, T_layer), ``heatmap_total`` (P,),
                              optional ``tf_relevance`` and ``tf_spectra``
                              (P, C, segments, freqs)
``summary/``                  per (class, filter): ``n_selected``, ``offsets`` (row ranges in
                              ``pairs``), ``total_relevance``, ``total_abs_relevance``,
                              ``selected_share``, ``activation_mean``, ``relevance_mean``,
                              ``heatmap_mean``, ``spectral_relevance_sum``, ``spectrum_mean``,
                              ``power_mean`` (, ``tf_relevance_sum``)
``coords/``                   ``freqs`` (Hz), ``tf_times``/``tf_freqs``
============================  ==================================================================

Why HDF5 (h5py)
---------------
* One self-describing file per fold with typed, chunked arrays and metadata attributes:
  heatmaps are written chunk by chunk while they are computed and read back slice by slice
  (one filter's selection) without loading a fold, let alone a run.
* A single file can be written to a temporary name and renamed into place, which makes each
  fold atomic (a killed run leaves no half fold behind) and lets parallel workers each write
  their own file without locking; the run index is rewritten atomically as folds finish.
* Portable and pickle-free (readable from MATLAB, R, Julia, ``h5dump``), and h5py is already
  a dependency; zarr (many small files per array) and xarray are not installed, and ``.npz``
  can be neither appended to nor read partially.

Reading
-------
:func:`load_relevance` returns a :class:`RelevanceRun`: run-level summaries stacked over
folds as :class:`Labelled` arrays (numpy values + dimension names + coordinates), band
aggregation, a per-filter table, and lazy per-fold access (:class:`FoldRelevance`) to the
selected windows' heatmaps and spectra.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from eegcrp.errors import StoreError
from eegcrp.io import atomic_path

__all__ = [
    "INDEX_NAME",
    "SUMMARIES",
    "FoldRelevance",
    "FoldWriter",
    "Labelled",
    "RelevanceRun",
    "StoreError",
    "load_relevance",
    "read_fold_attrs",
]

#: Name of the run-level index file.
INDEX_NAME = "index.json"

_JSON_ATTRS = ("explain_config", "subjects", "classes", "ch_names", "bands", "input_bounds",
               "layer_over_logit", "input_over_layer")
_FOLD_RE = re.compile(r"^rep(\d+)_sub-(.+)$")
_STR = h5py.string_dtype()


# --------------------------------------------------------------------------- writing
class FoldWriter:
    """Write one fold file atomically (to a temporary name, renamed on success).

    Use as a context manager; on an exception the temporary file is removed and nothing
    appears at ``path``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file: h5py.File | None = None

    def __enter__(self) -> FoldWriter:
        self._atomic = atomic_path(self.path, ".h5")
        tmp = self._atomic.__enter__()
        self.file = h5py.File(tmp, "w")
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        try:
            if self.file is not None:
                self.file.close()
        finally:
            self.file = None
        return self._atomic.__exit__(*exc)

    @property
    def _f(self) -> h5py.File:
        if self.file is None:
            raise StoreError("FoldWriter is not open; use it as a context manager")
        return self.file

    def write_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Fold metadata (scalars and strings; lists as JSON strings)."""
        for key, value in attrs.items():
            if isinstance(value, (list, tuple, dict)):
                value = json.dumps(value)
            self._f.attrs[key] = value

    def write_samples(self, *, subject: np.ndarray, window: np.ndarray, y: np.ndarray,
                      pred: np.ndarray, logits: np.ndarray, filter_relevance: np.ndarray) -> None:
        """Per-window data of all candidate windows."""
        g = self._f.create_group("samples")
        g.create_dataset("subject", data=np.asarray(subject, dtype=object), dtype=_STR)
        g.create_dataset("window", data=np.asarray(window, np.int64))
        g.create_dataset("y", data=np.asarray(y, np.int64))
        g.create_dataset("pred", data=np.asarray(pred, np.int64))
        g.create_dataset("logits", data=np.asarray(logits, np.float32))
        g.create_dataset("filter_relevance", data=np.asarray(filter_relevance, np.float32))

    def write_pairs(self, cls: np.ndarray, filt: np.ndarray, sample: np.ndarray,
                    rank: np.ndarray, relevance: np.ndarray) -> None:
        """The selection: one row per (class, filter, window)."""
        g = self._f.require_group("pairs")
        for name, values, dtype in (("class", cls, np.int64), ("filter", filt, np.int64),
                                    ("sample", sample, np.int64), ("rank", rank, np.int64),
                                    ("relevance", relevance, np.float32)):
            g.create_dataset(name, data=np.asarray(values, dtype))

    def create_pair_arrays(self, n_pairs: int, *, n_channels: int, n_times: int, n_bins: int,
                           n_time_layer: int, tf_shape: tuple[int, int] | None = None) -> None:
        """Chunked per-pair arrays, filled by :meth:`write_pair_chunk`."""
        g = self._f.require_group("pairs")
        shapes = {
            "heatmaps": (n_channels, n_times),
            "spectral_relevance": (n_channels, n_bins),
            "spectra": (n_channels, n_bins),
            "relevance_time": (n_time_layer,),
            "activation_time": (n_time_layer,),
            "heatmap_total": (),
        }
        if tf_shape is not None:
            shapes["tf_relevance"] = (n_channels, *tf_shape)
            shapes["tf_spectra"] = (n_channels, *tf_shape)
        for name, shape in shapes.items():
            row_bytes = 4 * int(np.prod(shape, dtype=np.int64))
            rows = int(max(1, min(max(n_pairs, 1), (1 << 20) // row_bytes)))
            g.create_dataset(name, shape=(n_pairs, *shape), maxshape=(None, *shape),
                             dtype=np.float32, chunks=(rows, *shape))

    def write_pair_chunk(self, rows: slice, arrays: Mapping[str, np.ndarray]) -> None:
        """Write rows ``rows`` of the per-pair arrays."""
        g = self._f["pairs"]
        for name, values in arrays.items():
            g[name][rows] = np.asarray(values, np.float32)

    def write_summary(self, summary: Mapping[str, np.ndarray], *, freqs: np.ndarray,
                      tf: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Per-(class, filter) summaries and coordinates."""
        g = self._f.create_group("summary")
        for name, values in summary.items():
            values = np.asarray(values)
            dtype = np.int64 if values.dtype.kind in "iub" else np.float32
            g.create_dataset(name, data=values.astype(dtype))
        c = self._f.create_group("coords")
        c.create_dataset("freqs", data=np.asarray(freqs, np.float64))
        if tf is not None:
            c.create_dataset("tf_times", data=np.asarray(tf[0], np.float64))
            c.create_dataset("tf_freqs", data=np.asarray(tf[1], np.float64))


# --------------------------------------------------------------------------- reading
def _decode(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        if key in _JSON_ATTRS and isinstance(value, str):
            value = json.loads(value)
        out[key] = value
    return out


def read_fold_attrs(path: str | Path) -> dict[str, Any]:
    """Metadata of a fold file (JSON attributes decoded)."""
    with h5py.File(path, "r") as f:
        return _decode(f.attrs)


@dataclass
class Labelled:
    """A numpy array with named dimensions and coordinates (a tiny xarray stand-in).

    Attributes
    ----------
    values : ndarray
    dims : tuple of str
        One name per axis.
    coords : dict
        Dimension name -> labels of that axis (list or 1-D array); may omit dimensions.
    """

    values: np.ndarray
    dims: tuple[str, ...]
    coords: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.dims) != np.ndim(self.values):
            raise ValueError(f"{len(self.dims)} dims {self.dims} for an array of shape "
                             f"{np.shape(self.values)}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.values))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.values, dtype=dtype)

    def axis(self, dim: str) -> int:
        """Axis number of a dimension."""
        try:
            return self.dims.index(dim)
        except ValueError:
            raise KeyError(f"no dimension {dim!r}; dimensions: {self.dims}") from None

    def sel(self, **labels: Any) -> Labelled:
        """Select one label per named dimension (that dimension is dropped)."""
        values, dims, coords = self.values, list(self.dims), dict(self.coords)
        for dim, label in labels.items():
            ax = dims.index(dim) if dim in dims else self.axis(dim)
            names = list(coords.get(dim, range(values.shape[ax])))
            try:
                pos = names.index(label)
            except ValueError:
                raise KeyError(f"{label!r} not in {dim}: {names}") from None
            values = np.take(values, pos, axis=ax)
            dims.pop(ax)
            coords.pop(dim, None)
        return Labelled(values, tuple(dims), coords)

    def sum(self, dim: str) -> Labelled:
        """Sum over one dimension."""
        ax = self.axis(dim)
        return Labelled(np.sum(self.values, axis=ax), self.dims[:ax] + self.dims[ax + 1:],
                        {k: v for k, v in self.coords.items() if k != dim})

    def mean(self, dim: str) -> Labelled:
        """Mean over one dimension (NaN-aware)."""
        ax = self.axis(dim)
        return Labelled(np.nanmean(self.values, axis=ax), self.dims[:ax] + self.dims[ax + 1:],
                        {k: v for k, v in self.coords.items() if k != dim})


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


class FoldRelevance:
    """Lazy reader of one fold file: every method opens the file and reads only its slice.

    Attributes
    ----------
    path : Path
    attrs : dict
        Fold metadata (layer, composite, classes, ch_names, sfreq, conservation ...).
    """

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
            raise StoreError(f"{self.path} is not a readable fold file ({exc}); delete it and "
                             "re-run `eegcrp explain`") from exc

    def __repr__(self) -> str:
        return (f"FoldRelevance({self.name}: layer {self.layer}, {self.attrs.get('n_pairs')} "
                f"selected windows)")

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

    def coords(self) -> dict[str, Any]:
        """Coordinates of every dimension used by this fold's arrays."""
        n_lt = self._n_layer_time
        coords: dict[str, Any] = {
            "class": self.classes,
            "filter": list(range(self.n_filters)),
            "channel": self.ch_names,
            "time": np.arange(self.n_times) / self.sfreq,
            "layer_time": np.arange(n_lt) * (self.n_times / max(n_lt, 1)) / self.sfreq,
            "freq": self.freqs,
        }
        if self._tf is not None:
            coords["tf_time"], coords["tf_freq"] = self._tf
        return coords

    def open(self) -> h5py.File:
        """The fold file opened read-only, for lazy access to its datasets (close it)."""
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
    def samples(self) -> dict[str, np.ndarray]:
        """Per-window data: subject, window, y, pred, logits, correct."""
        with self.open() as f:
            g = f["samples"]
            out = {k: g[k][()] for k in ("subject", "window", "y", "pred", "logits")}
        out["subject"] = np.array([s.decode() if isinstance(s, bytes) else str(s)
                                   for s in out["subject"]], dtype=object)
        out["correct"] = out["y"] == out["pred"]
        return out

    def filter_relevance(self) -> Labelled:
        """Every filter's total relevance in every window, per explained class."""
        with self.open() as f:
            values = f["samples/filter_relevance"][()]
        return Labelled(values, ("class", "sample", "filter"),
                        {"class": self.classes, "filter": list(range(self.n_filters))})

    def pairs(self) -> dict[str, np.ndarray]:
        """The selection table: class, filter, sample, rank, relevance per row."""
        with self.open() as f:
            return {k: f["pairs"][k][()] for k in ("class", "filter", "sample", "rank",
                                                     "relevance")}

    def selection(self, cls: int | str, filt: int) -> dict[str, np.ndarray]:
        """Selected windows of one (class, filter), highest-ranked first.

        Keys: ``sample`` (index into :meth:`samples`), ``subject``, ``window`` (index within
        the subject), ``relevance`` (the filter's total relevance there), ``rows`` (in
        ``pairs``).
        """
        rows = self._rows(cls, filt)
        with self.open() as f:
            sample = f["pairs/sample"][rows]
            relevance = f["pairs/relevance"][rows]
            subject = f["samples/subject"][()][sample] if len(sample) else np.zeros(0, object)
            window = f["samples/window"][()][sample] if len(sample) else np.zeros(0, np.int64)
        subject = np.array([s.decode() if isinstance(s, bytes) else str(s) for s in subject],
                           dtype=object)
        return {"sample": sample, "subject": subject, "window": window,
                "relevance": relevance, "rows": np.arange(rows.start, rows.stop)}

    def pair_array(self, name: str, cls: int | str, filt: int) -> Labelled:
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
        return Labelled(values, _PAIR_DIMS[name], coords)

    def heatmaps(self, cls: int | str, filt: int) -> Labelled:
        """Conditional input heatmaps (sample, channel, time) of the selected windows."""
        return self.pair_array("heatmaps", cls, filt)

    def spectral_relevance(self, cls: int | str, filt: int) -> Labelled:
        """DFT relevance (sample, channel, freq) of the selected windows."""
        return self.pair_array("spectral_relevance", cls, filt)

    def spectra(self, cls: int | str, filt: int) -> Labelled:
        """Orthonormal amplitude spectra (sample, channel, freq) of the selected windows."""
        return self.pair_array("spectra", cls, filt)

    def summary(self, name: str) -> Labelled:
        """One per-(class, filter) summary of this fold (see :data:`SUMMARIES`)."""
        if name not in _SUMMARY_DIMS:
            raise KeyError(f"unknown summary {name!r}; use one of {list(_SUMMARY_DIMS)}")
        with self.open() as f:
            if name not in f["summary"]:
                raise KeyError(f"{name} was not stored (explain.short_time: false?)")
            values = f["summary"][name][()]
        dims = _SUMMARY_DIMS[name]
        return Labelled(values, dims, {k: v for k, v in self.coords().items() if k in dims})


#: Names of the per-(class, filter) summaries.
SUMMARIES = tuple(_SUMMARY_DIMS)


@dataclass
class RelevanceRun:
    """All folds of an explain run.

    Attributes
    ----------
    run_dir : Path
    index : dict
        ``index.json`` (settings and per-fold records; empty if absent).
    folds : list of FoldRelevance
        In repetition, then subject order.
    """

    run_dir: Path
    index: dict[str, Any]
    folds: list[FoldRelevance]

    @property
    def meta(self) -> dict[str, Any]:
        """Settings shared by the folds (from the first fold's attributes)."""
        keys = ("layer", "n_filters", "composite", "first_layer_rule", "zero_bias",
                "selection", "share", "top_k", "rank_by", "select_from", "by_class",
                "correctness", "classes", "ch_names", "sfreq", "n_times", "bands",
                "short_time", "explain_hash", "explain_config")
        first = self.folds[0].attrs if self.folds else {}
        out = {k: first[k] for k in keys if k in first}
        if self.folds:
            out["freqs"] = self.folds[0].freqs
        return out

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.folds]

    @property
    def bands(self) -> dict[str, tuple[float, float]]:
        bands = self.meta.get("bands") or {}
        return {k: (float(v[0]), float(v[1])) for k, v in bands.items()}

    def fold(self, key: int | str | tuple[int, str]) -> FoldRelevance:
        """A fold by position, name (``rep00_sub-01``) or (repetition, subject)."""
        if isinstance(key, int):
            return self.folds[key]
        if isinstance(key, tuple):
            key = f"rep{int(key[0]):02d}_sub-{key[1]}"
        for fold in self.folds:
            if fold.name == key:
                return fold
        raise KeyError(f"no fold {key!r}; folds: {self.names}")

    def summary(self, name: str) -> Labelled:
        """A summary stacked over folds: dims ``("fold", "class", "filter", ...)``."""
        if not self.folds:
            raise StoreError(f"no folds in {self.run_dir}")
        parts = [f.summary(name) for f in self.folds]
        coords = dict(parts[0].coords)
        coords["fold"] = self.names
        return Labelled(np.stack([p.values for p in parts]), ("fold", *parts[0].dims), coords)

    def band_relevance(self, bands: Mapping[str, tuple[float, float]] | None = None) -> Labelled:
        """Relevance summed over each filter's selection and each band's bins.

        Dims ``(fold, class, filter, channel, band)``; bands default to the run's.
        """
        from eegcrp.spectral import band_sum

        spec = self.summary("spectral_relevance_sum")
        values, names = band_sum(spec.values, spec.coords["freq"], bands or self.bands)
        coords = {k: v for k, v in spec.coords.items() if k != "freq"}
        coords["band"] = names
        return Labelled(values, (*spec.dims[:-1], "band"), coords)

    def band_power(self, bands: Mapping[str, tuple[float, float]] | None = None) -> Labelled:
        """Mean power per band of each filter's selected windows (fold, class, filter,
        channel, band)."""
        from eegcrp.spectral import band_mean

        spec = self.summary("power_mean")
        values, names = band_mean(spec.values, spec.coords["freq"], bands or self.bands)
        coords = {k: v for k, v in spec.coords.items() if k != "freq"}
        coords["band"] = names
        return Labelled(values, (*spec.dims[:-1], "band"), coords)

    def table(self) -> Any:
        """One row per fold x class x filter: selection size, relevance totals and share.

        Returns a pandas DataFrame with columns repetition, subject, fold, class, filter,
        n_selected, total_relevance, total_abs_relevance, selected_share.
        """
        import pandas as pd

        rows = []
        for fold in self.folds:
            stats = {k: fold.summary(k).values for k in
                     ("n_selected", "total_relevance", "total_abs_relevance", "selected_share")}
            for c, cname in enumerate(fold.classes):
                for f in range(fold.n_filters):
                    rows.append({"repetition": fold.repetition, "subject": fold.subject,
                                 "fold": fold.name, "class": cname, "filter": f,
                                 **{k: v[c, f].item() for k, v in stats.items()}})
        return pd.DataFrame(rows)

    def conservation(self) -> Any:
        """Per fold (a DataFrame): ``conservation_upper`` = sum |layer relevance - logit| /
        sum |logit| over windows and classes; ``conservation_lower`` = the same for each
        selected heatmap's total against its filter's relevance; ``layer_over_logit`` and
        ``input_over_layer``: 5th percentile, median and 95th percentile of those ratios;
        ``zero_bias``: whether biases were left out of the rules."""
        import pandas as pd

        keys = ("conservation_upper", "conservation_lower", "layer_over_logit",
                "input_over_layer", "zero_bias", "composite", "n_samples", "n_pairs",
                "wall_time_s")
        return pd.DataFrame([{"fold": f.name, **{k: f.attrs.get(k) for k in keys}}
                             for f in self.folds])


def _sort_key(path: Path, order: list[str]) -> tuple[int, int, str]:
    match = _FOLD_RE.match(path.stem)
    rep, sub = (int(match.group(1)), match.group(2)) if match else (0, path.stem)
    return rep, order.index(sub) if sub in order else len(order), sub


def load_relevance(run_dir: str | Path) -> RelevanceRun:
    """Open an explain run lazily.

    Parameters
    ----------
    run_dir : str | Path
        The run folder (``<output_dir>/explain``) or the study's ``output_dir``.

    Returns
    -------
    RelevanceRun
        Index, folds (lazy :class:`FoldRelevance` readers) and stacked summaries.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "folds").is_dir() and (run_dir / "explain" / "folds").is_dir():
        run_dir = run_dir / "explain"
    folds_dir = run_dir / "folds"
    if not folds_dir.is_dir():
        raise StoreError(f"no explain results in {run_dir}; run `eegcrp explain` first")
    index: dict[str, Any] = {}
    if (run_dir / INDEX_NAME).is_file():
        try:
            index = json.loads((run_dir / INDEX_NAME).read_text())
        except (OSError, ValueError):
            index = {}
    paths = [p for p in folds_dir.glob("*.h5") if not p.name.startswith(".")]
    order = [str(s) for s in index.get("subjects", [])]
    if not order:
        order = sorted({_FOLD_RE.match(p.stem).group(2) for p in paths
                        if _FOLD_RE.match(p.stem)})
    paths.sort(key=lambda p: _sort_key(p, order))
    return RelevanceRun(run_dir, index, [FoldRelevance(p) for p in paths])

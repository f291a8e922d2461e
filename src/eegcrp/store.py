"""Results store of the explain stage: one HDF5 file per fold, read back as xarray objects.

Schema (the one place it is written down)
-----------------------------------------
``<output_dir>/explain/manifest.json`` (a stage manifest, :mod:`eegcrp.stages.manifest`)
lists the fold files, the channels with positions and the ground truth of simulated data.
Each fold (repetition x held-out subject) has ``explain/folds/rep{r:02d}_sub-{s}.h5``,
readable with plain h5py:

============================  =================================================================
``/`` attributes              identity, name, repetition, subject, checkpoint and its sha256,
                              layer, n_filters, composite, first_layer_rule, zero_bias, init,
                              selection rule (selection, share, top_k, rank_by, select_from,
                              by_class, correctness), classes, subjects, ch_names, sfreq,
                              n_times, bands, input_bounds, device, threads, counts,
                              conservation errors and ratios, wall time (lists and dicts as
                              JSON strings)
``samples/``                  every candidate window: ``subject``, ``trial`` (id within the
                              subject), ``onset`` (s from the trial start), ``y``, ``pred``,
                              ``logits`` (n, K), ``filter_relevance`` (K, n, F): each filter's
                              total relevance per explained class
``pairs/``                    one row per selected (class, filter, window), sorted by class,
                              filter and rank: ``class``, ``filter``, ``sample``, ``rank``,
                              ``relevance``, ``heatmaps`` (P, C, T), ``spectral_relevance`` and
                              ``spectra`` (P, C, bins), ``relevance_time`` and
                              ``activation_time`` (P, T_layer), ``heatmap_total`` (P,), optional
                              ``tf_relevance`` and ``tf_spectra`` (P, C, segments, freqs)
``summary/``                  per (class, filter): ``n_selected``, ``offsets`` (row ranges in
                              ``pairs``), ``total_relevance``, ``total_abs_relevance``,
                              ``selected_share``, ``activation_mean``, ``relevance_mean``,
                              ``heatmap_mean``, ``spectral_relevance_sum``, ``spectrum_mean``,
                              ``power_mean`` (, ``tf_relevance_sum``); ``n_candidates`` per class
``coords/``                   ``freqs`` (Hz), ``tf_times``/``tf_freqs``
============================  =================================================================

Filters have one global key, :class:`FilterKey` (repetition, held-out subject, layer,
filter index): filter ``k`` of two fold models are different filters.

Reading
-------
:func:`load_relevance` returns an :class:`xarray.Dataset` of the per-(fold, class, filter)
summaries with dimensions ``fold, class, filter, channel, time, layer_time, freq`` and
coordinates ``repetition``/``subject`` along ``fold``, channel positions ``ch_pos``
(channel, xyz) and the frequencies in Hz (``.sel``, ``.mean(dim=...)``, ``.to_dataframe()``
work as usual). :func:`open_relevance` gives the :class:`RelevanceRun` behind it, whose
:class:`FoldRelevance` readers return a fold's selected windows (heatmaps, spectra) lazily,
slice by slice. Only the folds the manifest lists are read; other files are reported as
stale and ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import xarray as xr

from eegcrp.errors import StoreError
from eegcrp.io import atomic_path

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_VARIABLES",
    "SUMMARIES",
    "FilterKey",
    "FoldRelevance",
    "FoldWriter",
    "RelevanceRun",
    "load_relevance",
    "open_relevance",
    "read_fold_attrs",
]

_STR = h5py.string_dtype()


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
        """Fold metadata (scalars and strings; lists and dicts as JSON strings)."""
        for key, value in attrs.items():
            if isinstance(value, (list, tuple, dict)):
                value = json.dumps(value)
            elif value is None:
                value = ""
            self._f.attrs[key] = value

    def write_samples(self, *, subject: np.ndarray, trial: np.ndarray, onset: np.ndarray,
                      y: np.ndarray, pred: np.ndarray, logits: np.ndarray,
                      filter_relevance: np.ndarray) -> None:
        """Per-window data of all candidate windows."""
        g = self._f.create_group("samples")
        g.create_dataset("subject", data=np.asarray(subject, dtype=object), dtype=_STR)
        g.create_dataset("trial", data=np.asarray(trial, np.int64))
        g.create_dataset("onset", data=np.asarray(onset, np.float64))
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
            return pd.DataFrame({k: f["pairs"][k][()] for k in
                                 ("class", "filter", "sample", "rank", "relevance")})

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
        from eegcrp.relevance.spectral import band_sum

        return self._bands("spectral_relevance_sum", band_sum, bands)

    def band_power(self, bands: Mapping[str, tuple[float, float]] | None = None
                   ) -> xr.DataArray:
        """Mean power per band of each filter's selected windows:
        (fold, class, filter, channel, band)."""
        from eegcrp.relevance.spectral import band_mean

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
        5th percentile, median and 95th percentile of those ratios."""
        keys = ("conservation_upper", "conservation_lower", "layer_over_logit",
                "input_over_layer", "zero_bias", "composite", "init", "n_samples", "n_pairs",
                "wall_time_s", "threads", "device")
        return pd.DataFrame([{"fold": f.name, **{k: f.attrs.get(k) for k in keys}}
                             for f in self.folds])


def _explain_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").is_file() and (run_dir / "explain").is_dir():
        run_dir = run_dir / "explain"
    return run_dir


def open_relevance(run_dir: str | Path) -> RelevanceRun:
    """Open an explain run (``<output_dir>/explain`` or the study's ``output_dir``).

    Only the fold files the manifest lists are opened; unlisted files are stale (logged and
    listed in :attr:`RelevanceRun.stale`).

    Raises
    ------
    StoreError
        When the folder holds no finished explain stage or a listed file is missing.
    """
    run_dir = _explain_dir(run_dir)
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise StoreError(f"no explain results in {run_dir}; run `eegcrp explain CONFIG` first")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path} is unreadable ({exc}); re-run `eegcrp explain`") from exc
    if manifest.get("stage") != "explain":
        raise StoreError(f"{path} is the manifest of stage {manifest.get('stage')!r}, not "
                         "explain")
    if not manifest.get("complete"):
        raise StoreError(f"the explain stage in {run_dir} did not finish; re-run `eegcrp "
                         "explain` to resume it")
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

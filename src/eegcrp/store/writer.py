"""Writing one fold file of the explain store (schema: :mod:`eegcrp.store`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from eegcrp.errors import StoreError
from eegcrp.io import atomic_path

__all__ = ["FoldWriter"]

_STR = h5py.string_dtype()


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

    def write_pair_values(self, values: Mapping[str, np.ndarray]) -> None:
        """Whole per-pair columns written at once (e.g. conservation ratios and flags)."""
        g = self._f.require_group("pairs")
        for name, data in values.items():
            data = np.asarray(data)
            g.create_dataset(name, data=data.astype(np.int8 if data.dtype == bool
                                                    else np.float32))

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



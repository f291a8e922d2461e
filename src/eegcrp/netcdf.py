"""Labelled results as netCDF-4 files (xarray through h5netcdf), written atomically.

Every labelled product of a stage (concept clusters, regions' channel x band sums, ICA
decompositions, sources folds) is one :class:`xarray.Dataset` in one ``.nc`` file, so any
netCDF reader (xarray, netCDF4, ncdump, MATLAB's ``ncread``) opens it with its dimension
names and coordinates. The explain store stays raw HDF5: its fold files are read lazily,
row by row, in a layout netCDF has no use for.

netCDF attributes hold strings and numbers only: lists, dicts, booleans and None are
written as JSON strings and their names listed in the attribute ``json_attributes``, so
:func:`read_netcdf` gives back what was written. The bytes depend only on the data and the
library versions (no timestamps): the same inputs give the same file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .io import atomic_path

__all__ = ["read_attributes", "read_netcdf", "write_netcdf"]

_JSON_KEY = "json_attributes"
_ENGINE = "h5netcdf"


def _is_plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def write_netcdf(ds: xr.Dataset, target: str | Path) -> None:
    """Write ``ds`` to ``target`` atomically (netCDF-4 via h5netcdf).

    Parameters
    ----------
    ds : xarray.Dataset
        Variables of numbers or strings; attributes of any JSON-serialisable value.
    target : str | Path
        The ``.nc`` file; replaced only once the whole file is written.
    """
    attrs: dict[str, Any] = {}
    encoded = []
    for key, value in ds.attrs.items():
        if key == _JSON_KEY:
            raise ValueError(f"attribute name {_JSON_KEY!r} is reserved; rename it")
        if _is_plain(value):
            attrs[key] = value
        else:
            attrs[key] = json.dumps(value, default=str)
            encoded.append(key)
    attrs[_JSON_KEY] = json.dumps(encoded)
    out = ds.copy(deep=False)
    out.attrs = attrs
    for name, var in out.variables.items():
        if var.dtype.kind == "O":  # object arrays of str: a fixed netCDF string type
            out[name] = var.astype(str)
    with atomic_path(target, ".nc") as tmp:
        out.to_netcdf(tmp, engine=_ENGINE)


def _decoded(attrs: dict[str, Any]) -> dict[str, Any]:
    encoded = json.loads(attrs.pop(_JSON_KEY, "[]"))
    out = {}
    for key, value in attrs.items():
        if key in encoded:
            value = json.loads(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def read_netcdf(path: str | Path) -> xr.Dataset:
    """The whole file written by :func:`write_netcdf`, loaded into memory (the file is
    closed on return), attributes decoded."""
    ds = xr.load_dataset(path, engine=_ENGINE)
    ds.attrs = _decoded(dict(ds.attrs))
    return ds


def read_attributes(path: str | Path, names: Iterable[str] | None = None
                    ) -> dict[str, Any] | None:
    """The decoded attributes of a file written by :func:`write_netcdf` (all, or ``names``
    where present) without reading its variables; None when the file is missing, truncated
    or not netCDF (a killed writer's leftover, to be computed again)."""
    try:
        with xr.open_dataset(path, engine=_ENGINE) as ds:
            attrs = _decoded(dict(ds.attrs))
    except Exception:  # missing, truncated or not netCDF: the caller recomputes
        return None
    if names is None:
        return attrs
    return {k: attrs[k] for k in names if k in attrs}

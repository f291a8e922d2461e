"""Filter descriptors: one normalised vector per filter key and class, from the explain store.

Every fold trains its own EEGNet, so a descriptor must not depend on what a model's training
leaves unidentified (the offset, scale and sign of a filter's pre-batch-norm activation, the
scale of a model's logits), and must keep what means something (the sign of relevance:
evidence for or against the class). Each kind below says why its normalisation is right.
All kinds are computed per filter from the per-(fold, class, filter) summaries alone, so
permuting the filters of a model permutes the descriptors and nothing else.

==================  ==========================================================================
kind                vector (per filter and class) and normalisation
==================  ==========================================================================
``activation_mean`` the mean activation time course over the filter's selected windows (the
                    thesis' default), centred, oriented and scaled to unit norm. ``b2_conv2``
                    is followed by a batch norm (and an ELU): a model with weights ``c w``
                    and batch-norm statistics ``c mu``, ``c^2 var`` (and ``sign(c) gamma``)
                    computes the same function for every ``c != 0``, so the activation's
                    offset, scale and sign are not identifiable across models. Centring
                    removes the offset, the unit norm the scale, and the sign is fixed by the
                    relevance, which is identifiable: the time course is oriented so that it
                    correlates positively with the filter's relevance time course (if that
                    correlation is exactly 0, so that its largest excursion is positive).
``relevance_mean``  the mean relevance time course at the layer, scaled to unit norm, sign
                    and offset kept: relevance is in logit units, its sign is evidence for
                    (+) or against (-) the class and its time average is the filter's net
                    contribution; only its scale (how confident a model is) is dropped.
``spectral``        relevance per channel and band (the DFT relevance summed over each band's
                    bins, per selected window), flattened, unit norm, sign kept (as above).
``spectral_bins``   the same per channel and DFT bin inside the bands (finer, larger).
``spatial``         relevance per channel (the DFT relevance summed over all bins = the
                    heatmap's total per channel), unit norm, sign kept.
``power``           log10 band power per channel and band of the selected (z-scored)
                    windows, centred over channels and bands and scaled to unit norm: power
                    is positive and spans decades, so ratios (log differences) are what
                    compares; centring removes a common gain of the windows.
==================  ==========================================================================

Several kinds are concatenated block by block, each block of unit norm and the whole divided
by sqrt(number of blocks), so every block weighs the same whatever its length and the result
has unit norm (cosine and Euclidean distances then rank neighbours alike).

A filter whose descriptor is undefined is excluded from embedding and clustering, with the
reason recorded (``valid`` False, ``excluded``): no selected windows (``n_selected == 0``: its
means are NaN), non-finite values, or a zero vector (e.g. a filter without any relevance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..config.concepts import DESCRIPTOR_KINDS
from ..config.stages import DEFAULT_BANDS
from ..relevance.spectral import band_mean, band_sum
from ..store import FilterKey

__all__ = ["FilterDescriptors", "descriptor_variables", "filter_descriptors", "unit_table"]

#: Store summaries each descriptor kind reads.
_NEEDS: dict[str, tuple[str, ...]] = {
    "activation_mean": ("activation_mean", "relevance_mean"),
    "relevance_mean": ("relevance_mean",),
    "spectral": ("spectral_relevance_sum",),
    "spectral_bins": ("spectral_relevance_sum",),
    "spatial": ("spectral_relevance_sum",),
    "power": ("power_mean",),
}


def descriptor_variables(kinds: Sequence[str]) -> list[str]:
    """Store summaries needed for ``kinds`` (plus ``n_selected``)."""
    out = ["n_selected"]
    for kind in kinds:
        if kind not in _NEEDS:
            raise ValueError(f"unknown descriptor {kind!r}; use one of {list(DESCRIPTOR_KINDS)}")
        out += [v for v in _NEEDS[kind] if v not in out]
    return out


@dataclass
class FilterDescriptors:
    """Descriptors of every filter key and class.

    Attributes
    ----------
    values : ndarray, shape (n_classes, n_units, n_features)
        One row per unit (fold x filter, fold-major); NaN rows where not ``valid``.
    valid : ndarray of bool, shape (n_classes, n_units)
    excluded : ndarray of str, shape (n_classes, n_units)
        Why a row is not valid ('' where valid).
    units : DataFrame
        One row per unit: ``key`` (``rep00/S01/b2_conv2/3``), ``fold``, ``repetition``,
        ``subject``, ``layer``, ``filter``.
    classes, kinds : list of str
    blocks : dict of str to slice
        Feature columns of each kind.
    """

    values: np.ndarray
    valid: np.ndarray
    excluded: np.ndarray
    units: pd.DataFrame
    classes: list[str]
    kinds: list[str]
    blocks: dict[str, slice]


def unit_table(ds: xr.Dataset, layer: str) -> pd.DataFrame:
    """One row per fold x filter of ``ds`` (fold-major): key, fold, repetition, subject,
    layer, filter."""
    n_filters = ds.sizes["filter"]
    folds = [str(f) for f in ds["fold"].values]
    reps = [int(r) for r in ds["repetition"].values]
    subjects = [str(s) for s in ds["subject"].values]
    rows = [(FilterKey(r, s, layer, f).id, fold, r, s, layer, f)
            for fold, r, s in zip(folds, reps, subjects, strict=True) for f in range(n_filters)]
    return pd.DataFrame(rows, columns=["key", "fold", "repetition", "subject", "layer",
                                       "filter"])


def _unit_norm(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm along the last axis; zero rows become NaN."""
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, x / np.where(norm > 0, norm, 1.0), np.nan)


def _per_window(ds: xr.Dataset, name: str) -> np.ndarray:
    """A sum over the selected windows divided by their number: (fold, class, filter, ...)."""
    n = ds["n_selected"].values.astype(np.float64)
    values = ds[name].values.astype(np.float64)
    n = n.reshape(n.shape + (1,) * (values.ndim - 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, values / np.where(n > 0, n, 1.0), np.nan)


def _activation(ds: xr.Dataset) -> np.ndarray:
    act = ds["activation_mean"].values.astype(np.float64)
    rel = ds["relevance_mean"].values.astype(np.float64)
    centred = act - act.mean(-1, keepdims=True)
    sign = np.sign(np.sum(centred * rel, axis=-1))
    peak = np.take_along_axis(centred, np.abs(centred).argmax(-1)[..., None], -1)[..., 0]
    sign = np.where(sign == 0, np.sign(peak), sign)
    return _unit_norm(centred * sign[..., None])


def _spectral(ds: xr.Dataset, bands: Mapping[str, tuple[float, float]], kind: str
              ) -> np.ndarray:
    spec = _per_window(ds, "spectral_relevance_sum")  # fold, class, filter, channel, freq
    freqs = ds["freq"].values
    if kind == "spatial":
        out = spec.sum(-1)
    elif kind == "spectral":
        out, _ = band_sum(spec, freqs, bands)
    else:
        inside = np.zeros(len(freqs), bool)
        for lo, hi in bands.values():
            inside |= (freqs >= lo) & (freqs < hi)
        out = spec[..., inside]
    return _unit_norm(out.reshape(*out.shape[:3], -1))


def _power(ds: xr.Dataset, bands: Mapping[str, tuple[float, float]]) -> np.ndarray:
    power, _ = band_mean(ds["power_mean"].values, ds["freq"].values, bands)
    with np.errstate(invalid="ignore", divide="ignore"):
        logp = np.where(power > 0, np.log10(np.where(power > 0, power, 1.0)), np.nan)
    logp = logp.reshape(*logp.shape[:3], -1)
    return _unit_norm(logp - logp.mean(-1, keepdims=True))


def _block(ds: xr.Dataset, kind: str, bands: Mapping[str, tuple[float, float]]) -> np.ndarray:
    if kind == "activation_mean":
        return _activation(ds)
    if kind == "relevance_mean":
        return _unit_norm(ds["relevance_mean"].values.astype(np.float64))
    if kind in ("spectral", "spectral_bins", "spatial"):
        return _spectral(ds, bands, kind)
    if kind == "power":
        return _power(ds, bands)
    raise ValueError(f"unknown descriptor {kind!r}; use one of {list(DESCRIPTOR_KINDS)}")


def filter_descriptors(
    ds: xr.Dataset,
    kinds: Sequence[str] = ("activation_mean",),
    bands: Mapping[str, tuple[float, float]] | None = None,
    layer: str | None = None,
) -> FilterDescriptors:
    """Normalised descriptors of every filter key and class (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        Shaped like :meth:`eegcrp.store.RelevanceRun.to_dataset` (dims fold, class, filter,
        channel, layer_time, freq; ``repetition``/``subject`` along fold), holding at least
        :func:`descriptor_variables` of ``kinds``.
    kinds : sequence of str
        Descriptor kinds, concatenated in this order.
    bands : mapping | None
        Bands in Hz for ``spectral``/``spectral_bins``/``power`` (default: ``ds.attrs``'
        bands, else the canonical bands).
    layer : str | None
        Layer name for the filter keys (default ``ds.attrs['layer']``).

    Returns
    -------
    FilterDescriptors
    """
    import json

    kinds = list(kinds)
    missing = [v for v in descriptor_variables(kinds) if v not in ds]
    if missing:
        raise KeyError(f"the dataset lacks {missing}, needed for descriptors {kinds}")
    if bands is None:
        bands = ({k: tuple(v) for k, v in json.loads(ds.attrs["bands"]).items()}
                 if "bands" in ds.attrs else None)
    bands = dict(bands) if bands else dict(DEFAULT_BANDS)
    layer = str(layer if layer is not None else ds.attrs.get("layer", "layer"))
    n_folds, n_classes, n_filters = (ds.sizes[d] for d in ("fold", "class", "filter"))
    parts, blocks, start = [], {}, 0
    for kind in kinds:
        block = _block(ds, kind, bands)  # fold, class, filter, feature
        parts.append(block)
        blocks[kind] = slice(start, start + block.shape[-1])
        start += block.shape[-1]
    values = np.concatenate(parts, axis=-1) / np.sqrt(len(parts))
    # (fold, class, filter, feature) -> (class, fold x filter, feature)
    values = values.transpose(1, 0, 2, 3).reshape(n_classes, n_folds * n_filters, -1)
    n_sel = ds["n_selected"].values.transpose(1, 0, 2).reshape(n_classes, -1)
    finite = np.all(np.isfinite(values), axis=-1)
    excluded = np.full(finite.shape, "", dtype=object)
    excluded[~finite] = "zero or non-finite descriptor"
    excluded[n_sel == 0] = "no selected windows"
    valid = excluded == ""
    values[~valid] = np.nan
    return FilterDescriptors(values=values, valid=valid, excluded=excluded,
                             units=unit_table(ds, layer),
                             classes=[str(c) for c in ds["class"].values], kinds=kinds,
                             blocks=blocks)

"""Per-filter quantities, per-cluster summaries and arrays, and model agreement.

Everything pooled here is pooled over the filters of one concept cluster (each filter one
vote: means over filters of per-window means), never over a filter index.

Per filter and class (:class:`FilterQuantities`):

* ``relevance``: the filter's mean relevance per selected window at the layer (the
  relevance time course summed over time), in logit units, signed;
* ``share``: its total relevance over the class's candidate windows as a share (%) of the
  summed absolute relevance of all filters of its model (comparable across models whose
  logits differ in scale);
* ``relevance_band`` (channel, band): DFT relevance summed over each band's bins, per
  selected window (logit units); ``relevance_spectrum`` (freq): summed over channels;
* ``power_band`` (channel, band): mean energy per DFT bin of the selected (z-scored)
  windows within each band; ``power_spectrum`` (freq): mean over channels.

Model agreement (the thesis' "same vs different"): per class, each fold model's spectral
relevance summed over its filters' selections (channel x bin, flattened) is correlated
(Pearson) between the models of the same held-out subject in different repetitions
("same") and between the models of different held-out subjects in the same repetition
("different").
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial.distance import pdist

from ..relevance.spectral import band_mean, band_sum

__all__ = ["FilterQuantities", "cluster_summary", "filter_quantities", "model_agreement",
           "window_classes"]

#: Members beyond which coherence is estimated from a seeded random subset.
COHERENCE_MAX_POINTS = 2000


@dataclass
class FilterQuantities:
    """Per (class, unit) quantities; a unit is a fold x filter, fold-major (see module
    docstring for the definitions and units)."""

    relevance: np.ndarray  # (class, unit)
    share: np.ndarray  # (class, unit), %
    relevance_band: np.ndarray  # (class, unit, channel, band)
    power_band: np.ndarray  # (class, unit, channel, band)
    relevance_spectrum: np.ndarray  # (class, unit, freq)
    power_spectrum: np.ndarray  # (class, unit, freq)
    bands: dict[str, tuple[float, float]]
    freqs: np.ndarray


def _units(values: np.ndarray) -> np.ndarray:
    """(fold, class, filter, ...) -> (class, fold x filter, ...)."""
    moved = np.moveaxis(values, 1, 0)
    return moved.reshape(moved.shape[0], -1, *moved.shape[3:])


def filter_quantities(ds: xr.Dataset, bands: Mapping[str, tuple[float, float]]
                      ) -> FilterQuantities:
    """The per-filter quantities of ``ds`` (a :meth:`RelevanceRun.to_dataset` dataset with
    ``n_selected``, ``total_relevance``, ``relevance_mean``, ``spectral_relevance_sum`` and
    ``power_mean``), computed class by class to bound memory."""
    bands = dict(bands)
    freqs = ds["freq"].values.astype(np.float64)
    n = ds["n_selected"].values.astype(np.float64)  # fold, class, filter
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(n > 0, 1.0 / np.where(n > 0, n, 1.0), np.nan)
        total = ds["total_relevance"].values.astype(np.float64)
        denom = np.abs(total).sum(-1, keepdims=True)
        share = 100 * np.where(denom > 0, total / np.where(denom > 0, denom, 1.0), np.nan)
    relevance = ds["relevance_mean"].values.astype(np.float64).sum(-1)
    relevance = np.where(n > 0, relevance, np.nan)
    rel_band, pow_band, rel_spec, pow_spec = [], [], [], []
    for c in range(ds.sizes["class"]):
        spec = ds["spectral_relevance_sum"].isel({"class": c}).values  # fold, filter, ch, freq
        w = inv[:, c][..., None, None]
        rb, _ = band_sum(spec, freqs, bands)
        rel_band.append(rb * w)
        rel_spec.append(spec.sum(-2, dtype=np.float64) * inv[:, c][..., None])
        power = ds["power_mean"].isel({"class": c}).values
        pb, _ = band_mean(power, freqs, bands)
        pow_band.append(pb)
        pow_spec.append(power.mean(-2, dtype=np.float64))
    stack = lambda parts: _units(np.stack(parts, axis=1))  # noqa: E731
    return FilterQuantities(
        relevance=_units(relevance), share=_units(share), relevance_band=stack(rel_band),
        power_band=stack(pow_band), relevance_spectrum=stack(rel_spec),
        power_spectrum=stack(pow_spec), bands=bands, freqs=freqs,
    )


def window_classes(run: Any, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """True-class counts (class, unit, true class) and correctly classified counts
    (class, unit) of each filter's selected windows, read from the fold files (small
    arrays only)."""
    counts, correct = [], []
    for fold in run.folds:
        samples, pairs = fold.samples(), fold.pairs()
        y = samples["y"].to_numpy(np.int64)
        pred = samples["pred"].to_numpy(np.int64)
        cls, filt, sample = (pairs[k].to_numpy(np.int64) for k in ("class", "filter", "sample"))
        k, n_f = len(classes), fold.n_filters
        cnt = np.zeros((k, n_f, k), np.int64)
        np.add.at(cnt, (cls, filt, y[sample]), 1)
        cor = np.zeros((k, n_f), np.int64)
        np.add.at(cor, (cls, filt), (y[sample] == pred[sample]).astype(np.int64))
        counts.append(cnt)
        correct.append(cor)
    return _units(np.stack(counts)), _units(np.stack(correct))


def _coherence(points: np.ndarray, seed: int) -> float:
    """1 / mean pairwise Euclidean distance (the thesis'); NaN for fewer than 2 points."""
    if len(points) < 2:
        return float("nan")
    if len(points) > COHERENCE_MAX_POINTS:
        pick = np.random.default_rng(seed).choice(len(points), COHERENCE_MAX_POINTS,
                                                  replace=False)
        points = points[np.sort(pick)]
    mean = float(np.mean(pdist(points)))
    return 1.0 / mean if mean > 0 else float("inf")


def _nanmean(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """NaN-aware mean without warnings (all-NaN slices give NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _nanstd(x: np.ndarray, axis: int = 0) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(x, axis=axis)


def _representatives(dist: np.ndarray, folds: np.ndarray, n: int) -> list[int]:
    """The ``n`` members nearest to the centroid, at most one per fold model while other
    models contribute (so the atlas shows the concept across models)."""
    order = np.argsort(dist, kind="stable")
    picked: list[int] = []
    seen: set[str] = set()
    for i in order:
        if folds[i] not in seen and len(picked) < n:
            picked.append(int(i))
            seen.add(folds[i])
    picked += [int(i) for i in order if int(i) not in picked][: n - len(picked)]
    return picked


def cluster_summary(
    members: np.ndarray,
    cls: int,
    q: FilterQuantities,
    units: pd.DataFrame,
    *,
    n_models_scope: int,
    shared_fraction: float,
    space: np.ndarray,
    descriptors: np.ndarray,
    centroid: np.ndarray | None,
    n_representatives: int,
    metric: str,
    seed: int,
    windows: tuple[np.ndarray, np.ndarray] | None = None,
    classes: list[str] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metrics (one clusters.csv row, without its identity columns) and arrays of one cluster.

    Parameters
    ----------
    members : ndarray of int
        Unit indices of the cluster's filters (class ``cls``).
    space : ndarray (n_members, d)
        The members' points where coherence is measured (embedding, else descriptors).
    descriptors : ndarray (n_members, n_features)
        The members' descriptors (representatives: nearest to ``centroid``, one per model
        while other models contribute).
    centroid : ndarray | None
        The cluster's centroid in descriptor space (None: no representatives, e.g. "NC").
    """
    from .clustering import centroid_distances

    sub = units.iloc[members]
    n_models = int(sub["fold"].nunique())
    row: dict[str, Any] = {
        "n_filters": len(members),
        "n_models": n_models,
        "n_subjects": int(sub["subject"].nunique()),
        "n_models_scope": n_models_scope,
        "shared": bool(n_models >= shared_fraction * n_models_scope - 1e-9) if len(members)
        else False,
        "mean_relevance": float(_nanmean(q.relevance[cls, members])) if len(members)
        else np.nan,
        "mean_share": float(_nanmean(q.share[cls, members])) if len(members) else np.nan,
        "coherence": _coherence(space, seed),
    }
    row["kind"] = "shared" if row["shared"] else "subject-specific"
    if windows is not None and classes is not None:
        counts, correct = windows
        total = counts[cls, members].sum(0)
        n_win = total.sum()
        for k, name in enumerate(classes):
            row[f"share_{name}"] = float(total[k] / n_win) if n_win else np.nan
        row["correct_share"] = float(correct[cls, members].sum() / n_win) if n_win else np.nan
    reps: list[str] = []
    if centroid is not None and len(members):
        dist = centroid_distances(descriptors, centroid[None, :], metric)[:, 0]
        reps = [str(k) for k in sub["key"].to_numpy()[
            _representatives(dist, sub["fold"].to_numpy(), n_representatives)]]
    row["representatives"] = ";".join(reps)
    empty = lambda shape: np.full(shape, np.nan)  # noqa: E731
    nb = q.relevance_band.shape[-2:]
    arrays = {
        "relevance_band": _nanmean(q.relevance_band[cls, members]) if len(members)
        else empty(nb),
        "power_band": _nanmean(q.power_band[cls, members]) if len(members) else empty(nb),
        "relevance_spectrum_mean": _nanmean(q.relevance_spectrum[cls, members])
        if len(members) else empty(len(q.freqs)),
        "relevance_spectrum_sd": _nanstd(q.relevance_spectrum[cls, members])
        if len(members) else empty(len(q.freqs)),
        "power_spectrum_mean": _nanmean(q.power_spectrum[cls, members]) if len(members)
        else empty(len(q.freqs)),
    }
    return row, arrays


def model_agreement(ds: xr.Dataset) -> pd.DataFrame:
    """Pearson correlation of the fold models' spectral relevance, per class and pair.

    Rows: ``class``, ``kind`` ('same': same held-out subject, different repetitions;
    'different': different held-out subjects, same repetition), ``fold_a``, ``fold_b``,
    ``r``. Pairs of neither kind are left out.
    """
    folds = [str(f) for f in ds["fold"].values]
    reps = np.asarray(ds["repetition"].values)
    subjects = np.asarray([str(s) for s in ds["subject"].values])
    same_subject = subjects[:, None] == subjects[None, :]
    same_rep = reps[:, None] == reps[None, :]
    ia, ib = np.triu_indices(len(folds), k=1)
    kind = np.where(same_subject[ia, ib] & ~same_rep[ia, ib], "same",
                    np.where(~same_subject[ia, ib] & same_rep[ia, ib], "different", ""))
    keep = kind != ""
    rows = []
    for c, name in enumerate(ds["class"].values):
        spec = ds["spectral_relevance_sum"].isel({"class": c}).values
        vectors = spec.sum(1, dtype=np.float64).reshape(len(folds), -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(vectors) if len(folds) > 1 else np.ones((1, 1))
        rows.append(pd.DataFrame({
            "class": str(name), "kind": kind[keep],
            "fold_a": np.asarray(folds)[ia[keep]], "fold_b": np.asarray(folds)[ib[keep]],
            "r": corr[ia[keep], ib[keep]],
        }))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["class", "kind", "fold_a", "fold_b", "r"])

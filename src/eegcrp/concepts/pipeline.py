"""The concepts analysis: descriptors, clusterings per class (per repetition and pooled over
repetitions), stability across repetitions, per-cluster summaries and model agreement.

:func:`compute_concepts` runs on an :class:`xarray.Dataset` shaped like
:meth:`eegcrp.store.RelevanceRun.to_dataset` (so it runs on synthetic data without files);
given the :class:`~eegcrp.store.RelevanceRun` as well, it adds the class balance of each
cluster's selected windows (read from the fold files).

Stability (needs >= 2 repetitions; with one it is "not assessable", never "stable"):

* every repetition's clusters are matched to the pooled clusters
  (:func:`~eegcrp.concepts.clustering.match_clusters`: Hungarian assignment on centroid
  distance in descriptor space, a match when the centroid lies within the pooled cluster's
  radius); a pooled cluster's **recurrence** is the fraction of repetitions with a match;
* a pooled cluster is **stable** when its recurrence is at least
  ``concepts.stable_recurrence``; a repetition's cluster inherits the verdict of the pooled
  cluster it matches (not stable when it matches none);
* the **adjusted Rand index** per repetition compares the pooled clustering restricted to
  that repetition's filters with the repetition's own clustering of the same filters (noise
  counts as one group).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..config.concepts import ConceptsConfig
from ..config.stages import DEFAULT_BANDS
from ..errors import ConceptsError
from .clustering import ConceptClusterer, match_clusters, resolve_min_cluster_size
from .descriptors import descriptor_variables, filter_descriptors
from .summaries import cluster_summary, filter_quantities, model_agreement, window_classes

__all__ = ["ConceptsResult", "analysis_variables", "cluster_name", "compute_concepts"]

logger = logging.getLogger(__name__)

#: Label of the noise group and of the pseudo-cluster of every (valid) filter.
NOISE, ALL = -1, -2


def cluster_name(label: int) -> str:
    """'1'..'K' for clusters 0..K-1, 'NC' for noise, 'all' for the pseudo-cluster."""
    return {NOISE: "NC", ALL: "all"}.get(int(label), str(int(label) + 1))


def analysis_variables(config: ConceptsConfig) -> list[str]:
    """Store summaries :func:`compute_concepts` reads."""
    out = descriptor_variables(config.descriptor)
    for name in ("total_relevance", "relevance_mean", "spectral_relevance_sum", "power_mean"):
        if name not in out:
            out.append(name)
    return out


@dataclass
class ConceptsResult:
    """What :func:`compute_concepts` returns (the tables of :mod:`eegcrp.concepts`)."""

    filters: pd.DataFrame
    clusters: pd.DataFrame
    stability: pd.DataFrame
    agreement: pd.DataFrame
    arrays: xr.Dataset
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Fit:
    idx: np.ndarray  # unit indices clustered
    model: ConceptClusterer
    n_models: int
    min_cluster_size: int


def _bands(ds: xr.Dataset, config: ConceptsConfig) -> dict[str, tuple[float, float]]:
    if config.bands:
        return {k: (float(v[0]), float(v[1])) for k, v in config.bands.items()}
    if "bands" in ds.attrs:
        return {k: (float(v[0]), float(v[1])) for k, v in json.loads(ds.attrs["bands"]).items()}
    return dict(DEFAULT_BANDS)


def _fit(x: np.ndarray, idx: np.ndarray, n_models: int, config: ConceptsConfig, seed: int,
         where: str) -> _Fit:
    mcs = resolve_min_cluster_size(config.min_cluster_size, n_models, config.shared_fraction)
    if config.clustering == "hdbscan":
        need, key = mcs, "min_cluster_size"
    else:
        need, key = config.min_samples or 10, "min_samples"
    if len(idx) < max(need, 3):
        raise ConceptsError(
            f"{where}: {len(idx)} filter(s) with selected windows, fewer than concepts.{key} "
            f"= {need} ({n_models} model(s)); set concepts.{key} to at most {len(idx)} (e.g. "
            f"--set concepts.{key}={max(2, len(idx) // 2)}), or explain more fold models "
            "(more subjects or repetitions)"
        )
    model = ConceptClusterer(
        embedding=config.embedding, metric=config.metric, n_neighbors=config.n_neighbors,
        min_dist=config.min_dist, n_epochs=config.n_epochs, clustering=config.clustering,
        min_cluster_size=mcs,
        min_samples=config.min_samples, eps=config.eps, random_state=seed,
    ).fit(x[idx])
    return _Fit(idx, model, n_models, mcs)


def _stable_text(assessable: bool, stable: bool | None, recurrence: float) -> str:
    if not assessable:
        return "not assessable (1 repetition)"
    return (f"{'stable' if stable else 'not stable'} (recurs in {100 * recurrence:.0f} % of "
            "the repetitions)")


@dataclass
class _Stability:
    """Per class: the repetitions' matches to the pooled clusters and the verdicts."""

    assessable: bool
    matches: dict[str, pd.DataFrame]
    recurrence: np.ndarray  # per pooled cluster (NaN when not assessable)
    stable: np.ndarray | None  # per pooled cluster (None when not assessable)
    rows: list[dict[str, Any]]  # stability.csv rows


def _stability(cname: str, x: np.ndarray, fits: dict[str, _Fit], reps: list[int],
               n_units: int, config: ConceptsConfig) -> _Stability:
    """Match every repetition's clusters to the pooled ones; ARI against the pooled
    clustering restricted to the repetition's filters (see the module docstring)."""
    from sklearn.metrics import adjusted_rand_score

    pooled = fits["pooled"]
    assessable = len(reps) >= 2
    pooled_label = np.full(n_units, -9, np.int64)
    pooled_label[pooled.idx] = pooled.model.labels_
    matches: dict[str, pd.DataFrame] = {}
    recurrence = np.zeros(pooled.model.n_clusters_)
    rows = []
    for r in reps:
        scope = f"rep{r:02d}"
        fit = fits[scope]
        row: dict[str, Any] = {"class": cname, "scope": scope, "repetition": r,
                               "n_filters": len(fit.idx), "n_clusters": fit.model.n_clusters_,
                               "n_noise": int(np.sum(fit.model.labels_ == NOISE)),
                               "min_cluster_size": fit.min_cluster_size,
                               "n_neighbors": fit.model.n_neighbors_,
                               "ari_vs_pooled": np.nan, "n_matched": np.nan}
        if assessable:
            m = match_clusters(x[pooled.idx], pooled.model.labels_, x[fit.idx],
                               fit.model.labels_, metric=config.metric,
                               quantile=config.match_quantile)
            matches[scope] = m
            hit = m["matched"].to_numpy()
            recurrence[np.unique(hit[hit >= 0])] += 1
            row["ari_vs_pooled"] = float(adjusted_rand_score(pooled_label[fit.idx],
                                                             fit.model.labels_))
            row["n_matched"] = int(np.sum(hit >= 0))
        rows.append(row)
    if assessable:
        recurrence = recurrence / len(reps)
        stable = recurrence >= config.stable_recurrence - 1e-9
    else:
        recurrence, stable = np.full_like(recurrence, np.nan), None
    rows.append({"class": cname, "scope": "pooled", "repetition": np.nan,
                 "n_filters": len(pooled.idx), "n_clusters": pooled.model.n_clusters_,
                 "n_noise": int(np.sum(pooled.model.labels_ == NOISE)),
                 "min_cluster_size": pooled.min_cluster_size,
                 "n_neighbors": pooled.model.n_neighbors_, "ari_vs_pooled": np.nan,
                 "n_matched": int(np.sum(stable)) if stable is not None else np.nan})
    return _Stability(assessable, matches, recurrence, stable, rows)


def _verdict(label: int, scope: str, st: _Stability) -> dict[str, Any]:
    """The stability columns of one clusters.csv row."""
    out: dict[str, Any] = {"matched": "", "match_distance": np.nan, "recurrence": np.nan,
                           "stable": pd.NA, "stability": ""}
    if label < 0:
        return out
    if scope == "pooled":
        ok = None if st.stable is None else bool(st.stable[label])
        rec = float(st.recurrence[label])
        out.update(recurrence=rec, stable=pd.NA if ok is None else ok,
                   stability=_stable_text(st.assessable, ok, rec))
    elif scope in st.matches:
        m = st.matches[scope].iloc[label]
        j = int(m["matched"])
        out.update(matched=cluster_name(j) if j >= 0 else "",
                   match_distance=float(m["distance"]),
                   stable=bool(st.stable[j]) if j >= 0 and st.stable is not None else False,
                   stability=("matches pooled cluster " + cluster_name(j)) if j >= 0
                   else "matches no pooled cluster")
    else:
        out["stability"] = _stable_text(False, None, np.nan)
    return out


def _cluster_rows(c: int, cname: str, x: np.ndarray, fits: dict[str, _Fit], st: _Stability,
                  q: Any, units: pd.DataFrame, windows: Any, classes: list[str],
                  config: ConceptsConfig, seed: int
                  ) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, np.ndarray],
                                                          np.ndarray]]]:
    """clusters.csv rows and per-cluster arrays of every clustering of one class."""
    rows, arrays = [], []
    for scope, fit in fits.items():
        labels = fit.model.labels_
        space = fit.model.embedding_ if fit.model.embedding_ is not None else x[fit.idx]
        for label in [*range(fit.model.n_clusters_), NOISE, ALL]:
            pick = (labels == label) if label != ALL else np.ones(len(labels), bool)
            members = fit.idx[pick]
            if label >= 0:
                cent = fit.model.centroids_[label]
            else:
                cent = x[members].mean(0) if len(members) else np.full(x.shape[1], np.nan)
            metrics, arr = cluster_summary(
                members, c, q, units, n_models_scope=fit.n_models,
                shared_fraction=config.shared_fraction, space=space[pick],
                descriptors=x[members], centroid=cent if label >= 0 else None,
                n_representatives=config.n_representatives, metric=config.metric,
                seed=seed, windows=windows, classes=classes)
            cid = f"{cname}/{scope}/{cluster_name(label)}"
            row = {"cluster_id": cid, "class": cname, "scope": scope,
                   "repetition": np.nan if scope == "pooled" else int(scope[3:]),
                   "cluster": cluster_name(label), "label": label, **metrics}
            if label < 0:
                row.update(shared=pd.NA, kind="noise" if label == NOISE else "all")
            row.update(_verdict(label, scope, st))
            rows.append(row)
            arrays.append((cid, arr, cent))
    return rows, arrays


def _filter_frame(c: int, cname: str, ds: xr.Dataset, desc: Any, q: Any,
                  fits: dict[str, _Fit], windows: Any, classes: list[str]) -> pd.DataFrame:
    """filters.csv rows of one class."""
    units = desc.units
    frame = units.copy()
    frame["class"] = cname
    frame["n_selected"] = ds["n_selected"].values[:, c, :].reshape(-1).astype(np.int64)
    frame["relevance"], frame["share"] = q.relevance[c], q.share[c]
    frame["valid"], frame["excluded"] = desc.valid[c], desc.excluded[c]
    rep_scope = np.array([f"rep{r:02d}" for r in units["repetition"]])
    for name in ("pooled", "rep"):
        lab = np.full(len(units), -9, np.int64)
        xy = np.full((len(units), 2), np.nan)
        for scope, fit in fits.items():
            if (scope == "pooled") != (name == "pooled"):
                continue
            pick = np.ones(len(fit.idx), bool) if name == "pooled" else \
                rep_scope[fit.idx] == scope
            lab[fit.idx[pick]] = fit.model.labels_[pick]
            if fit.model.embedding_ is not None:
                xy[fit.idx[pick]] = fit.model.embedding_[pick]
        frame[f"cluster_{name}"] = [cluster_name(v) if v > -9 else "excluded" for v in lab]
        frame[f"x_{name}"], frame[f"y_{name}"] = xy[:, 0], xy[:, 1]
    if windows is not None:
        for j, name in enumerate(classes):
            frame[f"windows_{name}"] = windows[0][c, :, j]
        frame["n_correct"] = windows[1][c]
    return frame


def compute_concepts(
    ds: xr.Dataset,
    config: ConceptsConfig,
    *,
    layer: str | None = None,
    run: Any = None,
    seed: int | None = None,
) -> ConceptsResult:
    """Cluster every filter of every fold model into concepts (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        Shaped like :meth:`RelevanceRun.to_dataset` with :func:`analysis_variables`.
    config : ConceptsConfig
    layer : str | None
        Layer of the filter keys (default ``ds.attrs['layer']``).
    run : RelevanceRun | None
        The store behind ``ds``, for the class balance of the selected windows.
    seed : int | None
        UMAP seed (default ``config.seed``, else 0).

    Raises
    ------
    ConceptsError
        Fewer than two fold models, or fewer filters than a cluster's minimum size.
    """
    start = time.perf_counter()
    if ds.sizes["fold"] < 2:
        raise ConceptsError(
            f"the explain results hold {ds.sizes['fold']} fold model(s); concepts shared "
            "across subjects need the filters of at least two models: train and explain "
            "with at least two subjects (dataset.subjects) or more repetitions "
            "(training.repetitions)"
        )
    seed = int(seed if seed is not None else (config.seed if config.seed is not None else 0))
    bands = _bands(ds, config)
    desc = filter_descriptors(ds, config.descriptor, bands, layer)
    q = filter_quantities(ds, bands)
    timings = {"descriptors": time.perf_counter() - start, "clustering": 0.0, "stability": 0.0,
               "summaries": 0.0}
    classes, units = desc.classes, desc.units
    windows = window_classes(run, classes) if run is not None else None
    reps = sorted(int(r) for r in units["repetition"].unique())
    rep_of = units["repetition"].to_numpy()
    n_models = int(units["fold"].nunique())
    frames, cluster_rows, stability_rows, arrays = [], [], [], []
    summary: dict[str, Any] = {"classes": {}, "repetitions": len(reps), "models": n_models,
                               "stability_assessable": len(reps) >= 2}
    for c, cname in enumerate(classes):
        tick = time.perf_counter()
        valid, x = desc.valid[c], desc.values[c]
        fits = {"pooled": _fit(x, np.flatnonzero(valid), n_models, config, seed,
                               f"class {cname!r}")}
        for r in reps:  # with one repetition its clustering is the pooled one
            fits[f"rep{r:02d}"] = fits["pooled"] if len(reps) < 2 else _fit(
                x, np.flatnonzero(valid & (rep_of == r)),
                int(units.loc[rep_of == r, "fold"].nunique()), config, seed,
                f"class {cname!r}, repetition {r}")
        tick2 = time.perf_counter()
        timings["clustering"] += tick2 - tick
        st = _stability(cname, x, fits, reps, len(units), config)
        stability_rows += st.rows
        tick3 = time.perf_counter()
        timings["stability"] += tick3 - tick2
        rows, arr = _cluster_rows(c, cname, x, fits, st, q, units, windows, classes, config,
                                  seed)
        cluster_rows += rows
        arrays += arr
        frames.append(_filter_frame(c, cname, ds, desc, q, fits, windows, classes))
        timings["summaries"] += time.perf_counter() - tick3
        pooled = fits["pooled"]
        summary["classes"][cname] = {
            "filters": int(len(units)), "excluded": int(np.sum(~valid)),
            "clusters": int(pooled.model.n_clusters_),
            "stable": int(np.sum(st.stable)) if st.stable is not None else None,
            "shared": int(sum(bool(r["shared"]) for r in rows
                              if r["scope"] == "pooled" and r["label"] >= 0)),
            "min_cluster_size": pooled.min_cluster_size,
            "n_neighbors": pooled.model.n_neighbors_,
        }
    tick = time.perf_counter()
    agreement = model_agreement(ds)
    timings["agreement"] = time.perf_counter() - tick
    summary["agreement"] = {
        str(cls): {kind: {"mean_r": float(g["r"].mean()), "pairs": len(g)}
                   for kind, g in part.groupby("kind")}
        for cls, part in agreement.groupby("class")}
    summary["timings"] = {k: round(v, 3) for k, v in timings.items()}
    summary["wall_time_s"] = round(time.perf_counter() - start, 3)
    clusters, stability = pd.DataFrame(cluster_rows), pd.DataFrame(stability_rows)
    for frame in (clusters, stability):
        frame["repetition"] = frame["repetition"].astype("Int64")
    return ConceptsResult(
        filters=pd.concat(frames, ignore_index=True), clusters=clusters,
        stability=stability, agreement=agreement,
        arrays=_arrays(arrays, ds, q, desc), summary=summary,
    )


def _arrays(items: list[tuple[str, dict[str, np.ndarray], np.ndarray]], ds: xr.Dataset,
            q: Any, desc: Any) -> xr.Dataset:
    """The per-cluster arrays as one dataset (dims cluster, channel, band, freq, feature)."""
    ids = [cid for cid, _, _ in items]
    dims = {"relevance_band": ("channel", "band"), "power_band": ("channel", "band"),
            "relevance_spectrum_mean": ("freq",), "relevance_spectrum_sd": ("freq",),
            "power_spectrum_mean": ("freq",)}
    data: dict[str, Any] = {name: (("cluster", *d), np.stack([a[name] for _, a, _ in items]))
                            for name, d in dims.items()}
    data["centroid"] = (("cluster", "feature"), np.stack([c for _, _, c in items]))
    coords: dict[str, Any] = {
        "cluster": ids, "channel": [str(c) for c in ds["channel"].values],
        "band": list(q.bands), "freq": q.freqs,
        "band_low": ("band", [v[0] for v in q.bands.values()]),
        "band_high": ("band", [v[1] for v in q.bands.values()]),
        "feature_kind": ("feature", [k for k, s in desc.blocks.items()
                                     for _ in range(s.stop - s.start)]),
    }
    if "ch_pos" in ds.coords:
        coords["ch_pos"] = (("channel", "xyz"), ds["ch_pos"].values)
        coords["xyz"] = ["x", "y", "z"]
    attrs = {"bipolar": int(ds.attrs.get("bipolar", 0)), "descriptor": json.dumps(desc.kinds),
             "layer": str(ds.attrs.get("layer", ""))}
    return xr.Dataset(data, coords=coords, attrs=attrs)

"""Embedding and clustering of filter descriptors, and matching clusters across repetitions.

:class:`ConceptClusterer` (scikit-learn conventions: parameters stored by ``__init__``,
``fit`` returns self, learned attributes end in ``_``) embeds unit-norm descriptors with
UMAP (2-D) and clusters the embedding with HDBSCAN or DBSCAN, or clusters the descriptors
themselves (``embedding="none"``; Euclidean distance between unit vectors, a monotone
function of the cosine distance). Noise is label -1 ("NC"); clusters are numbered 0..K-1 by
decreasing size.

Permutation equivariance: the rows are embedded in a canonical order that depends only on
their content (the projection on a fixed direction), so permuting the filters of a model,
or any rows, permutes the labels and the embedding and changes nothing else. Exact
duplicate rows are embedded and clustered once (see :meth:`ConceptClusterer.fit`), so a
repetition repeated identically clusters exactly as the repetition alone. UMAP with a
``random_state`` is deterministic (and runs single-threaded).

Matching (:func:`match_clusters`): the clusters of one clustering are assigned one-to-one
to the clusters of a reference by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) on the distance between centroids in
descriptor space (UMAP coordinates of different runs are not comparable). An assignment
counts as a match when the centroid lies within the reference cluster's radius: the
``quantile`` of its members' distances to its own centroid.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_array

__all__ = [
    "ConceptClusterer",
    "centroid_distances",
    "centroids",
    "exact_knn",
    "match_clusters",
    "resolve_min_cluster_size",
    "resolve_n_epochs",
    "resolve_n_neighbors",
]

logger = logging.getLogger(__name__)


def resolve_n_neighbors(setting: int | str, n: int) -> int:
    """UMAP's ``n_neighbors`` for ``n`` points: 'auto' = max(15, round(sqrt(n))), 'all' =
    n - 1 (the thesis), or the given number; never more than n - 1."""
    if setting == "auto":
        k = max(15, round(math.sqrt(n)))
    elif setting == "all":
        k = n - 1
    else:
        k = int(setting)
    return max(2, min(k, n - 1))


def resolve_n_epochs(setting: int | str, n: int) -> int | None:
    """UMAP's ``n_epochs``: 'auto' = None (UMAP's 500) below 4096 points, 200 from there."""
    if setting == "auto":
        return None if n < 4096 else 200
    return int(setting)


def resolve_min_cluster_size(setting: int | str, n_models: int, shared_fraction: float) -> int:
    """HDBSCAN's ``min_cluster_size``: 'auto' = max(5, ceil(shared_fraction x n_models)),
    the fewest filters a concept shared by that fraction of the models has."""
    if setting == "auto":
        return max(5, math.ceil(shared_fraction * n_models - 1e-9))
    return int(setting)


def exact_knn(x: np.ndarray, k: int, metric: str = "cosine", chunk: int = 1024
              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row, itself first: (indices, distances), each
    (n, k), by brute force in chunks of rows (memory: chunk x n distances).

    UMAP's own search is exact below 4096 rows and approximate (NN-descent, whose numba
    kernels take a minute to compile in every new process) above; this is exact at every
    size, and O(n^2) in time (8,000 rows: about 2 s).
    """
    n = len(x)
    norms = np.einsum("ij,ij->i", x, x)
    unit = x / np.sqrt(np.maximum(norms, 1e-300))[:, None]
    indices = np.empty((n, k), np.int64)
    dists = np.empty((n, k), np.float32)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        if metric == "cosine":
            d = 1.0 - unit[rows] @ unit.T
        else:
            d = norms[rows, None] + norms[None, :] - 2.0 * (x[rows] @ x.T)
        d = np.maximum(d, 0.0)
        if metric != "cosine":
            d = np.sqrt(d)
        d[np.arange(len(rows)), rows] = -1.0  # itself first, whatever the rounding
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < n else np.tile(
            np.arange(n), (len(rows), 1))
        pd_ = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd_, axis=1, kind="stable")
        indices[rows] = np.take_along_axis(part, order, axis=1)
        dists[rows] = np.maximum(np.take_along_axis(pd_, order, axis=1), 0.0)
    return indices, dists


def _canonical_order(x: np.ndarray) -> np.ndarray:
    """Row order by content only: descending projection on a fixed unit direction (ties,
    i.e. identical rows, keep their order, which then does not matter)."""
    direction = np.random.default_rng(20240531).standard_normal(x.shape[1])
    proj = np.round(x @ (direction / np.linalg.norm(direction)), 9)
    return np.argsort(-proj, kind="stable")


def _relabel(labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Clusters numbered by decreasing size (ties: the member first in the canonical order,
    ``rank``); noise stays -1."""
    ids = [k for k in np.unique(labels) if k >= 0]
    order = sorted(ids, key=lambda k: (-int(np.sum(labels == k)), int(rank[labels == k].min())))
    out = np.full(labels.shape, -1, np.int64)
    for new, old in enumerate(order):
        out[labels == old] = new
    return out


def centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean descriptor of each cluster 0..K-1: (K, n_features)."""
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if k == 0:
        return np.zeros((0, x.shape[1]))
    return np.stack([x[labels == j].mean(0) for j in range(k)])


def centroid_distances(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Distances between the rows of ``a`` and of ``b``: 1 - cosine similarity, or
    Euclidean."""
    if metric == "cosine":
        na = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
        nb = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-300)
        return np.clip(1.0 - na @ nb.T, 0.0, 2.0)
    diff = a[:, None, :] - b[None, :, :]
    return np.sqrt(np.sum(diff * diff, axis=-1))


def _radii(x: np.ndarray, labels: np.ndarray, cents: np.ndarray, metric: str,
           quantile: float) -> np.ndarray:
    out = np.zeros(len(cents))
    for j in range(len(cents)):
        d = centroid_distances(x[labels == j], cents[j : j + 1], metric)[:, 0]
        out[j] = float(np.quantile(d, quantile))
    return out


def match_clusters(ref_x: np.ndarray, ref_labels: np.ndarray, x: np.ndarray,
                   labels: np.ndarray, *, metric: str = "cosine", quantile: float = 0.9,
                   ) -> pd.DataFrame:
    """Match the clusters of ``labels`` (rows ``x``) to those of a reference clustering.

    Returns one row per cluster of ``labels``: ``cluster``, ``matched`` (reference cluster,
    -1 for none), ``distance`` (to the assigned reference centroid, NaN if unassigned) and
    ``radius`` (of that reference cluster). See the module docstring for the rule.
    """
    ref_c, own_c = centroids(ref_x, ref_labels), centroids(x, labels)
    rows = pd.DataFrame({"cluster": np.arange(len(own_c)), "matched": -1,
                         "distance": np.nan, "radius": np.nan})
    if not len(ref_c) or not len(own_c):
        return rows
    from scipy.optimize import linear_sum_assignment

    dist = centroid_distances(own_c, ref_c, metric)
    radius = _radii(ref_x, ref_labels, ref_c, metric, quantile)
    for i, j in zip(*linear_sum_assignment(dist), strict=True):
        rows.loc[i, ["distance", "radius"]] = dist[i, j], radius[j]
        if dist[i, j] <= radius[j] + 1e-12:
            rows.loc[i, "matched"] = j
    return rows


class ConceptClusterer(ClusterMixin, BaseEstimator):
    """Embed unit-norm filter descriptors (UMAP) and cluster them (HDBSCAN or DBSCAN).

    Parameters
    ----------
    embedding : {'umap', 'none'}
        Cluster a 2-D UMAP embedding, or the descriptors themselves.
    metric : {'cosine', 'euclidean'}
        UMAP's input metric (and the metric of :attr:`centroids_` distances).
    n_neighbors : int | 'auto' | 'all'
        See :func:`resolve_n_neighbors`.
    min_dist : float
        UMAP's ``min_dist``.
    n_epochs : int | 'auto'
        See :func:`resolve_n_epochs`.
    clustering : {'hdbscan', 'dbscan'}
    min_cluster_size : int
        HDBSCAN's smallest cluster.
    min_samples : int | None
        HDBSCAN's ``min_samples`` (None = ``min_cluster_size``) or DBSCAN's (None = 10).
    eps : float
        DBSCAN's radius.
    random_state : int | None
        Seed of UMAP.

    Attributes
    ----------
    labels_ : ndarray of int, shape (n,)
        Cluster 0..K-1 (by decreasing size) or -1 (noise, "NC").
    embedding_ : ndarray, shape (n, 2) | None
        UMAP coordinates (None for ``embedding='none'``).
    centroids_ : ndarray, shape (K, n_features)
        Mean descriptor of each cluster.
    n_neighbors_ : int | None
        The neighbourhood UMAP used (exact nearest neighbours, :func:`exact_knn`).
    n_clusters_ : int
    """

    def __init__(self, embedding: str = "umap", metric: str = "cosine",
                 n_neighbors: int | str = "auto", min_dist: float = 0.0,
                 n_epochs: int | str = "auto", clustering: str = "hdbscan",
                 min_cluster_size: int = 5, min_samples: int | None = None, eps: float = 0.5,
                 random_state: int | None = None) -> None:
        self.embedding = embedding
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.clustering = clustering
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.eps = eps
        self.random_state = random_state

    def _embed(self, x: np.ndarray) -> np.ndarray:
        import umap

        self.n_neighbors_ = resolve_n_neighbors(self.n_neighbors, len(x))
        knn = exact_knn(x, self.n_neighbors_, self.metric)
        reducer = umap.UMAP(n_components=2, n_neighbors=self.n_neighbors_, metric=self.metric,
                            min_dist=self.min_dist, random_state=self.random_state, n_jobs=1,
                            init="spectral" if len(x) > 10 else "random",
                            n_epochs=resolve_n_epochs(self.n_epochs, len(x)),
                            precomputed_knn=(*knn, None))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = reducer.fit_transform(x)
        for w in caught:  # e.g. a disconnected neighbourhood graph
            if "knn_search_index" not in str(w.message):  # no transform(): not needed
                logger.info("UMAP: %s", w.message)
        return np.asarray(out, np.float64)

    def _cluster(self, space: np.ndarray) -> np.ndarray:
        if self.clustering == "dbscan":
            from sklearn.cluster import DBSCAN

            model: Any = DBSCAN(eps=self.eps, min_samples=self.min_samples or 10)
        elif self.clustering == "hdbscan":
            from sklearn.cluster import HDBSCAN

            model = HDBSCAN(min_cluster_size=self.min_cluster_size,
                            min_samples=self.min_samples, copy=True)
        else:
            raise ValueError(f"clustering must be 'hdbscan' or 'dbscan', got "
                             f"{self.clustering!r}")
        labels = np.asarray(model.fit(space).labels_, np.int64)
        return np.where(labels < 0, -1, labels)

    def fit(self, X: Any, y: Any = None) -> ConceptClusterer:
        """Embed and cluster the rows of ``X`` (n_samples, n_features), unit norm each.

        Exact duplicate rows (e.g. identical models) are embedded and clustered once and
        share their label: zero distances would otherwise distort UMAP's neighbourhoods and
        the density estimate (sizes such as ``min_cluster_size`` count distinct rows).
        """
        x = check_array(X, dtype=np.float64)
        if self.embedding not in ("umap", "none"):
            raise ValueError(f"embedding must be 'umap' or 'none', got {self.embedding!r}")
        uniq, inverse = np.unique(x, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).ravel()
        order = _canonical_order(uniq)
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        xo = uniq[order]
        self.n_neighbors_ = None
        emb = self._embed(xo) if self.embedding == "umap" else None
        labels = self._cluster(emb if emb is not None else xo)[rank][inverse]
        self.labels_ = _relabel(labels, rank[inverse])
        self.embedding_ = None if emb is None else emb[rank][inverse]
        self.centroids_ = centroids(x, self.labels_)
        self.n_clusters_ = len(self.centroids_)
        return self

"""Config section of the ``concepts`` stage: filters of every fold model clustered into concepts
shared across subjects (see :mod:`eegcrp.concepts`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Section as _Section

__all__ = ["DESCRIPTOR_KINDS", "REPORT_ONLY_FIELDS", "ConceptsConfig"]

#: Filter descriptors (see :mod:`eegcrp.concepts.descriptors`).
DESCRIPTOR_KINDS = ("activation_mean", "relevance_mean", "spectral", "spectral_bins", "spatial",
                    "power")

#: Fields that change only how the report draws the results, not the stage's results: they
#: stay out of the stage's identity.
REPORT_ONLY_FIELDS = ("power_display", "report_clusters", "atlas_clusters", "atlas_windows")


class ConceptsConfig(_Section):
    """Concepts shared across subjects: descriptors, embedding, clustering, stability.

    Defaults: the thesis' descriptor (mean activation time course) and embedding (UMAP,
    cosine, ``min_dist`` 0, which packs similar filters tightly, as density clustering
    needs), but a neighbourhood that scales (``n_neighbors`` "auto" = sqrt of the number of
    filters, at least 15; the thesis' "all" costs O(n^2) and makes UMAP a global map) and
    HDBSCAN instead of a hand-tuned DBSCAN ``eps`` (HDBSCAN adapts to the density of each
    cluster and needs only a minimum size: by default as many filters as half of the models
    contribute to a shared concept).
    """

    descriptor: list[str] = Field(
        default_factory=lambda: ["activation_mean"],
        description="Filter descriptor(s), concatenated when several: "
        f"{', '.join(DESCRIPTOR_KINDS)} (activation_mean = the thesis').",
    )
    embedding: Literal["umap", "none"] = Field(
        "umap", description="'umap' = cluster a 2-D UMAP embedding (thesis); 'none' = cluster "
        "the descriptors themselves.",
    )
    metric: Literal["cosine", "euclidean"] = Field(
        "cosine", description="UMAP's input metric (descriptors have unit norm, so both rank "
        "neighbours alike; cosine is the thesis').",
    )
    n_neighbors: int | Literal["auto", "all"] = Field(
        "auto", description="UMAP neighbourhood: 'auto' = max(15, sqrt(n filters)), 'all' = "
        "every other filter (thesis; slow for many filters) or a number >= 2.",
    )
    min_dist: float = Field(0.0, ge=0, le=1, description="UMAP min_dist (thesis: 0).")
    n_epochs: int | Literal["auto"] = Field(
        "auto", description="UMAP optimisation epochs: 'auto' = UMAP's 500 below 4096 "
        "filters and 200 from there (UMAP's own choice above 10,000: an epoch of a large "
        "graph moves each point many times), or a number >= 10.",
    )
    clustering: Literal["hdbscan", "dbscan"] = Field(
        "hdbscan", description="sklearn.cluster.HDBSCAN, or DBSCAN with eps/min_samples "
        "(thesis).",
    )
    min_cluster_size: int | Literal["auto"] = Field(
        "auto", description="HDBSCAN's smallest cluster; 'auto' = max(5, shared_fraction x "
        "the number of models clustered).",
    )
    min_samples: int | None = Field(
        None, description="Density neighbours: HDBSCAN's min_samples (null = "
        "min_cluster_size) or DBSCAN's (null = 10, the thesis' for 160 filters).",
    )
    eps: float = Field(
        0.5, gt=0, description="DBSCAN radius in embedding units (thesis: 0.4-0.5 on UMAP).",
    )
    shared_fraction: float = Field(
        0.5, gt=0, le=1, description="A cluster is shared when at least this fraction of the "
        "models contributes a filter, else subject-specific.",
    )
    stable_recurrence: float = Field(
        0.7, gt=0, le=1, description="A pooled cluster is stable when a cluster of at least "
        "this fraction of the repetitions matches it (needs >= 2 repetitions).",
    )
    match_quantile: float = Field(
        0.9, gt=0, le=1, description="A repetition's cluster matches a pooled cluster when "
        "its centroid lies within this quantile of the pooled cluster's member distances to "
        "its centroid.",
    )
    n_representatives: int = Field(
        3, ge=1, description="Filters nearest to each cluster's centroid (the concept atlas).",
    )
    bands: dict[str, tuple[float, float]] | None = Field(
        None, description="Bands of the spectral descriptors and topographies, [low, high) "
        "Hz; null = the explain stage's bands.",
    )
    power_display: Literal["db", "one_over_f", "linear"] = Field(
        "db", description="Report only: band power in dB, or linear x band centre / first "
        "band centre and divided by the row's maximum (the thesis' 1/f compensation), or "
        "linear.",
    )
    report_clusters: int = Field(4, ge=1, description="Report only: pooled clusters per class "
                                 "with topographies and spectra (largest first; NC and all "
                                 "are added).")
    atlas_clusters: int = Field(3, ge=1, description="Report only: stable clusters per class "
                                "in the concept atlas (largest first).")
    atlas_windows: int = Field(3, ge=1, description="Report only: reference windows per "
                               "representative filter in the atlas.")
    seed: int | None = Field(
        None, ge=0, description="Seed of the UMAP embeddings; null = the study's seed.",
    )

    @field_validator("descriptor", mode="before")
    @classmethod
    def _descriptor(cls, value: object) -> object:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ValueError(f"descriptor must name one or more of {list(DESCRIPTOR_KINDS)}, "
                             f"got {value!r}")
        unknown = [v for v in items if v not in DESCRIPTOR_KINDS]
        if unknown:
            raise ValueError(f"unknown descriptor {unknown[0]!r}; use one or more of "
                             f"{list(DESCRIPTOR_KINDS)}")
        if len(set(items)) != len(items):
            raise ValueError(f"descriptor {items} names a descriptor twice; name each once")
        return items

    @field_validator("n_neighbors")
    @classmethod
    def _n_neighbors(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 2:
            raise ValueError(f"n_neighbors must be 'auto', 'all' or an integer >= 2, got "
                             f"{value}")
        return value

    @field_validator("n_epochs")
    @classmethod
    def _n_epochs(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 10:
            raise ValueError(f"n_epochs must be 'auto' or an integer >= 10, got {value}")
        return value

    @field_validator("min_cluster_size")
    @classmethod
    def _min_cluster_size(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 2:
            raise ValueError(f"min_cluster_size must be 'auto' or an integer >= 2, got {value}")
        return value

    @field_validator("min_samples")
    @classmethod
    def _min_samples(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"min_samples must be null or an integer >= 1, got {value}")
        return value

    @field_validator("bands")
    @classmethod
    def _bands(cls, value: dict[str, tuple[float, float]] | None
               ) -> dict[str, tuple[float, float]] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("bands is empty; name at least one band, e.g. {alpha: [8, 12]}, "
                             "or null for the explain bands")
        for name, (low, high) in value.items():
            if not 0 <= low < high:
                raise ValueError(f"band {name!r} = [{low}, {high}] must satisfy 0 <= low < high")
        return value

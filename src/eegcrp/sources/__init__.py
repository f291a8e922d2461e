"""Pipeline C, part 1: relevance of independent components (neural vs non-neural).

Per subject an ICA of the cached continuous EEG (:mod:`.ica`, labelled with ICLabel), an
exact linear virtual layer that splits every explained window into component terms plus a
residual (:mod:`.virtual`), the per-fold driver over the explain store (:mod:`.folds`),
and the shares of relevance held by brain and by each non-brain class (:mod:`.shares`).
Results of the ``sources`` stage are read with :func:`load_sources` (layout in
:mod:`.results`); :func:`group_shares` gives the shares of any grouping of filters (e.g.
pipeline B's clusters). :func:`cluster_sources` is the thesis' variant, one ICA per cluster
on its selected windows (it warns with what that violates).
"""

from .cluster import CLUSTER_WARNING, ClusterSources, cluster_sources
from .ica import (
    CATEGORIES,
    ICLABEL_CLASSES,
    ICAConvergenceError,
    SourcesError,
    SubjectICA,
    check_channels,
    fit_subject,
    study_conditions,
)
from .results import SourcesRun, load_sources
from .shares import bootstrap_mean, category_relevance, group_shares, subject_shares
from .virtual import ICARelevance, ica_relevance

__all__ = [
    "CATEGORIES",
    "CLUSTER_WARNING",
    "ICLABEL_CLASSES",
    "ClusterSources",
    "ICAConvergenceError",
    "ICARelevance",
    "SourcesError",
    "SourcesRun",
    "SubjectICA",
    "bootstrap_mean",
    "category_relevance",
    "check_channels",
    "cluster_sources",
    "fit_subject",
    "group_shares",
    "ica_relevance",
    "load_sources",
    "study_conditions",
    "subject_shares",
]

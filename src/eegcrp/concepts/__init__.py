"""Concepts shared across subjects (Pipeline B): every filter of every fold model clustered.

Every fold trains its own EEGNet, so filter ``k`` of one fold and filter ``k`` of another are
unrelated. The ``concepts`` stage describes every filter key (repetition, held-out subject,
layer, filter) per class by a normalised descriptor (:mod:`.descriptors`), embeds and
clusters the descriptors per class, per repetition and pooled over repetitions
(:mod:`.clustering`), matches the clusters across repetitions (stability), and summarises
each cluster (:mod:`.summaries`); :mod:`.pipeline` runs it all. Anything pooled across folds
is pooled per cluster, never per filter index.

Schema (the one place it is written down)
-----------------------------------------
``<output_dir>/concepts/`` holds ``manifest.json`` (a stage manifest whose ``extra`` has the
settings used and a per-class summary) and:

``filters.csv``: one row per filter key x class
    ``key`` (``rep00/S01/b2_conv2/3``), ``fold``, ``repetition``, ``subject`` (held out),
    ``layer``, ``filter``, ``class``, ``n_selected`` (selected windows), ``relevance``
    (mean relevance per selected window at the layer, logit units), ``share`` (% of the
    model's summed absolute filter relevance), ``valid`` / ``excluded`` (why a filter was
    left out: no selected windows, a zero or non-finite descriptor), ``cluster_rep`` and
    ``cluster_pooled`` (``1``..``K``, ``NC`` = noise, ``excluded``) with the 2-D embedding
    coordinates ``x_rep``, ``y_rep``, ``x_pooled``, ``y_pooled`` (NaN without UMAP), and
    with fold files ``windows_<class>`` (selected windows of each true class) and
    ``n_correct`` (of them correctly classified).
``clusters.csv``: one row per cluster of every clustering, plus ``NC`` and ``all``
    ``cluster_id`` (``<class>/<scope>/<cluster>``), ``class``, ``scope`` (``pooled`` or
    ``rep00``...), ``repetition``, ``cluster``, ``label`` (0..K-1, -1 NC, -2 all),
    ``n_filters``, ``n_models`` (fold models contributing), ``n_subjects`` (held-out
    subjects contributing), ``n_models_scope``, ``shared`` (at least
    ``concepts.shared_fraction`` of the scope's models contribute) and ``kind`` (shared,
    subject-specific, noise, all), ``mean_relevance`` (logit units per selected window, mean
    over filters), ``mean_share`` (%), ``coherence`` (1 / mean pairwise distance in the
    embedding, or in descriptor space without UMAP), ``share_<class>`` and
    ``correct_share`` (class balance of the selected windows), ``representatives`` (the
    filter keys nearest to the centroid, ``;``-separated), ``matched`` and
    ``match_distance`` (a repetition's cluster: the pooled cluster it matches),
    ``recurrence`` (a pooled cluster: fraction of repetitions with a matching cluster),
    ``stable`` (empty where not assessable) and ``stability`` (the verdict in words).
``stability.csv``: one row per class x repetition, and per class the pooled clustering
    ``class``, ``scope``, ``repetition``, ``n_filters``, ``n_clusters``, ``n_noise``,
    ``min_cluster_size``, ``n_neighbors`` (as used), ``ari_vs_pooled`` (adjusted Rand index
    of the repetition's clustering against the pooled one restricted to the same filters;
    noise is one group) and ``n_matched`` (clusters matching a pooled cluster; pooled row:
    stable clusters).
``agreement.csv``: one row per class x pair of fold models
    ``class``, ``kind`` (``same``: same held-out subject, other repetition; ``different``:
    other held-out subject, same repetition), ``fold_a``, ``fold_b``, ``r`` (Pearson
    correlation of the models' spectral relevance, channel x bin, summed over filters).
``clusters.nc``: per-cluster arrays (netCDF-4, :mod:`eegcrp.netcdf`; opens in xarray with
    its dims and coordinates), along ``cluster`` (= ``cluster_id``)
    ``relevance_band`` (cluster, channel, band; logit units per selected window, mean over
    filters), ``power_band`` (cluster, channel, band; mean energy per DFT bin of the
    z-scored selected windows), ``relevance_spectrum_mean``/``_sd`` (cluster, freq; summed
    over channels, mean and SD over filters), ``power_spectrum_mean`` (cluster, freq),
    ``centroid`` (cluster, feature; descriptor space); coordinates ``channel``, ``band``
    with ``band_low``/``band_high`` (Hz), ``freq`` (Hz), ``feature_kind``, and ``ch_pos``
    (channel, xyz; m) where known; attribute ``bipolar``.

Reading: :func:`load_concepts` returns a :class:`Concepts` of pandas tables and the
:class:`xarray.Dataset` of arrays.
"""

from .clustering import ConceptClusterer, match_clusters
from .descriptors import FilterDescriptors, filter_descriptors
from .pipeline import ConceptsResult, analysis_variables, compute_concepts
from .results import Concepts, load_concepts, write_concepts
from .sweep import stability_by_repetitions

__all__ = [
    "ConceptClusterer",
    "Concepts",
    "ConceptsResult",
    "FilterDescriptors",
    "analysis_variables",
    "compute_concepts",
    "filter_descriptors",
    "load_concepts",
    "match_clusters",
    "stability_by_repetitions",
    "write_concepts",
]

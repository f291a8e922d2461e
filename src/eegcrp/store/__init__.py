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
                              ``activation_time`` (P, T_layer), ``heatmap_total`` (P,),
                              ``conservation`` (P,: heatmap total / filter relevance) and
                              ``flagged`` (P,: off by more than the tolerance), optional
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

from .fold import DEFAULT_VARIABLES, SUMMARIES, FilterKey, FoldRelevance, read_fold_attrs
from .run import RelevanceRun, load_relevance, open_relevance
from .writer import FoldWriter

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

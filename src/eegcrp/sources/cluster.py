"""The thesis' variant: one ICA per cluster, fitted on the cluster's selected windows.

The thesis fitted ICA on the concatenated selected windows of all filters of a cluster.
:func:`cluster_sources` does the same, correctly otherwise (windows in volts, not
z-scored; extended infomax; rank handled; the exact virtual layer of :mod:`.virtual`), so
that its numbers can be set against the per-subject ICA of the ``sources`` stage. It warns
with :data:`CLUSTER_WARNING`: the assumptions this fit violates. It is not part of the
stage; call it with pipeline B's clusters (or with one group per class, the thesis'
cluster "all").
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mne
import numpy as np
import pandas as pd

from .folds import _rows_of, window_lookup
from .ica import SourcesError, SubjectICA, fit_subject
from .shares import category_relevance, group_shares, unit_table
from .virtual import ica_relevance

logger = logging.getLogger(__name__)

__all__ = ["CLUSTER_WARNING", "ClusterSources", "cluster_sources"]

#: What an ICA per cluster violates (issued as a UserWarning).
CLUSTER_WARNING = (
    "ICA per cluster (the thesis' variant) violates ICA's and ICLabel's assumptions: it "
    "pools windows of several subjects under one mixing matrix (heads, electrode positions "
    "and sources differ between subjects), joins short windows (a discontinuity at every "
    "join, which also distorts ICLabel's spectrum and autocorrelation features), uses "
    "windows selected for their relevance (not a sample of the recording) and usually far "
    "fewer samples than 20 x n_components^2. Use the per-subject ICA of the sources stage "
    "for conclusions; this variant only reproduces the thesis' analysis."
)


@dataclass
class ClusterSources:
    """One ICA per group and the shares it gives.

    Attributes
    ----------
    icas : dict of str to SubjectICA
        Per group, the decomposition of its selected windows (with ICLabel labels).
    units : DataFrame
        The unit table (:func:`eegcrp.sources.shares.unit_table`) with a ``group`` column.
    shares : DataFrame
        :func:`eegcrp.sources.group_shares` per group.
    failed : dict of str to str
        Groups whose ICA failed, with the reason.
    """

    icas: dict[str, SubjectICA]
    units: pd.DataFrame
    shares: pd.DataFrame
    failed: dict[str, str]


def _group_rows(run: Any, groups: Mapping[Any, str]) -> dict[str, list[tuple[Any, np.ndarray]]]:
    """Per group: (fold, pair rows) of the units it holds."""
    out: dict[str, list[tuple[Any, np.ndarray]]] = {}
    for fold in run.folds:
        pairs = fold.pairs()
        cls, filt = pairs["class"].to_numpy(), pairs["filter"].to_numpy()
        label = np.array([groups.get((fold.key(int(k)).id, fold.classes[int(c)]),
                                     groups.get(fold.key(int(k)).id))
                          for c, k in zip(cls, filt, strict=True)], dtype=object)
        for group in {g for g in label if g is not None}:
            out.setdefault(str(group), []).append((fold, np.flatnonzero(label == group)))
    return out


def cluster_sources(run: Any, windows: Mapping[str, mne.BaseEpochs],
                    groups: Mapping[Any, str], *, method: str = "picard",
                    n_components: str | int | float = "rank", max_iter: int = 1000,
                    seed: int = 0, ddof: int = 0, n_boot: int = 2000, ci: float = 0.95
                    ) -> ClusterSources:
    """ICA per group on the group's selected windows, and the category shares it gives.

    Parameters
    ----------
    run : eegcrp.store.RelevanceRun
        The explain store.
    windows : mapping
        Subject -> prepared windows (volts, not z-scored), e.g. from
        :func:`eegcrp.stages.prepare.load_prepared`.
    groups : mapping
        ``(FilterKey.id, class) -> group`` or ``FilterKey.id -> group``.
    method, n_components, max_iter, seed
        As for :func:`eegcrp.sources.fit_subject`.
    ddof : int
        The model's z-score ddof.
    n_boot, ci
        Bootstrap of the shares over subjects.
    """
    warnings.warn(CLUSTER_WARNING, UserWarning, stacklevel=2)
    logger.warning(CLUSTER_WARNING)
    standardized = run.meta.get("input_space", "model") != "sensor"
    lookups = {s: window_lookup(w) for s, w in windows.items()}
    icas, failed, parts = {}, {}, []
    for group, members in _group_rows(run, groups).items():
        picked: list[tuple[np.ndarray, np.ndarray, Any, np.ndarray]] = []
        for fold, rows in members:
            samples = fold.samples()
            pairs = fold.pairs().iloc[rows]
            sample = pairs["sample"].to_numpy()
            heat = fold.pair_rows("heatmaps", rows)
            cls = np.asarray(fold.classes, object)[pairs["class"].to_numpy()]
            keys = np.array([fold.key(int(k)).id for k in pairs["filter"]], dtype=object)
            subj = samples["subject"].to_numpy()[sample].astype(str)
            trial = samples["trial"].to_numpy()[sample]
            onset = samples["onset"].to_numpy()[sample]
            x = np.empty(heat.shape)
            for s in np.unique(subj):
                sel = subj == s
                idx = _rows_of(windows[s], lookups[s], trial[sel], onset[sel], s)
                x[sel] = windows[s].get_data(copy=False)[idx]
            ident = np.array([f"{a}/{b}/{c:.6f}" for a, b, c in zip(subj, trial, onset,
                                                                   strict=True)])
            picked.append((x, heat, np.c_[keys, cls, subj], ident))
        x = np.concatenate([p[0] for p in picked])
        info = next(iter(windows.values())).info
        # each window once: the same window may be selected by several filters
        _, first = np.unique(np.concatenate([p[3] for p in picked]), return_index=True)
        epochs = mne.EpochsArray(x[np.sort(first)], info, verbose="error")
        try:
            ica = fit_subject(epochs, f"cluster-{group}", method=method,
                              n_components=n_components, max_iter=max_iter, seed=seed)
        except SourcesError as exc:
            failed[group] = str(exc)
            continue
        icas[group] = ica
        heat = np.concatenate([p[1] for p in picked])
        meta = np.concatenate([p[2] for p in picked])
        out = ica_relevance(x, heat, ica.unmixing, ica.mixing, ica.mean,
                            standardized=standardized, ddof=ddof, spectra=False)
        units = unit_table(meta[:, 0], meta[:, 1], meta[:, 2],
                           category_relevance(out.component, out.residual, ica.probabilities))
        parts.append(units.assign(group=group))
    units = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    shares = pd.concat([group_shares(u, {(k, c): g for k, c, g in
                                         u[["key", "class", "group"]].itertuples(index=False)},
                                     n_boot=n_boot, ci=ci, seed=seed)
                        for _, u in units.groupby("group")], ignore_index=True) \
        if len(units) else pd.DataFrame()
    return ClusterSources(icas, units, shares, failed)

"""How concept stability depends on the number of repetitions R.

Stability needs repetitions: with R = 1 nothing is assessable, with R = 2 a cluster is either
in both runs or not. :func:`stability_by_repetitions` reclusters the filters of the first
``r`` repetitions of one study for each ``r`` asked for (the same models, nested subsets) and
tabulates per class how many pooled clusters there are, how many are stable, the share of
clustered filters that lie in stable clusters, and how well each repetition's own clustering
agrees with the pooled one (mean adjusted Rand index). ``benchmarks/bench_stability.py``
runs it on a finished study; the README's default R comes from that measurement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..config import ConceptsConfig
from ..errors import ConceptsError
from .pipeline import compute_concepts

__all__ = ["stability_by_repetitions"]


def stability_by_repetitions(ds: xr.Dataset, config: ConceptsConfig,
                             counts: Sequence[int] = (2, 3, 5, 10), *,
                             seed: int | None = None) -> pd.DataFrame:
    """Per ``r`` in ``counts`` and class: the concepts of the first ``r`` repetitions.

    Parameters
    ----------
    ds : xarray.Dataset
        Shaped like :meth:`RelevanceRun.to_dataset` with
        :func:`~eegcrp.concepts.analysis_variables` (coordinate ``repetition`` along ``fold``).
    config : ConceptsConfig
    counts : sequence of int
        Repetition counts (each at most the study's).

    Returns
    -------
    DataFrame
        ``repetitions``, ``class``, ``clusters``, ``stable``, ``stable_filter_share``,
        ``mean_recurrence``, ``mean_ari``.
    """
    available = sorted(int(r) for r in np.unique(ds["repetition"].values))
    too_many = [r for r in counts if r > len(available)]
    if too_many:
        raise ConceptsError(f"the study has {len(available)} repetitions; cannot measure "
                            f"stability with {too_many}: train with training.repetitions="
                            f"{max(counts)} or ask for fewer")
    rows = []
    for r in counts:
        keep = np.isin(ds["repetition"].values, available[:r])
        result = compute_concepts(ds.isel(fold=np.flatnonzero(keep)), config, seed=seed)
        pooled = result.clusters[(result.clusters["scope"] == "pooled")
                                 & (result.clusters["label"] >= 0)]
        reps = result.stability[result.stability["scope"] != "pooled"]
        for cls, part in pooled.groupby("class", sort=False):
            stable = part["stable"].fillna(False).astype(bool)
            rows.append({
                "repetitions": r, "class": cls, "clusters": len(part),
                "stable": int(stable.sum()),
                "stable_filter_share": float(part.loc[stable, "n_filters"].sum()
                                             / max(part["n_filters"].sum(), 1)),
                "mean_recurrence": float(part["recurrence"].mean()),
                "mean_ari": float(reps.loc[reps["class"] == cls, "ari_vs_pooled"].mean()),
            })
    return pd.DataFrame(rows)

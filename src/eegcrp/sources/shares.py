"""How much of the decision is brain: relevance shares of the ICLabel classes.

Every selected (class, filter, window) of the explain store has one relevance per
component (:mod:`.virtual`); each component has ICLabel probabilities over the seven
classes. The relevance of a **category** (:data:`eegcrp.sources.ica.CATEGORIES`: the seven
ICLabel classes and the virtual layer's residual term) in a window is

* ``hard``: the sum over the components whose most probable class it is;
* ``probability``: the sum over all components weighted by their probability of it;

each for three **measures** of a component's relevance: ``signed``, ``positive`` (its
positive part: evidence for the class) and ``absolute``. The residual is its own category
under both weightings.

The **unit table** (:func:`unit_table`) sums these per (fold model, class, filter, window
subject): one row per unit, category, weighting and measure. Shares are computed from it
for any grouping of units: :func:`group_shares` sums a group's units per subject, divides
each category by the sum over all categories (per subject), averages over subjects and
gives a percentile bootstrap interval over subjects. Only the ``positive`` and ``absolute``
measures give shares (a signed total can be near zero).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..stats import MEASURES
from .ica import CATEGORIES

__all__ = [
    "MEASURES",
    "SHARE_MEASURES",
    "WEIGHTINGS",
    "bootstrap_mean",
    "category_relevance",
    "group_shares",
    "headline",
    "subject_shares",
    "unit_table",
]

#: Ways of assigning a component's relevance to ICLabel classes.
WEIGHTINGS = ("hard", "probability")
#: Per-component relevance measures summed into a category.
#: Measures shares are given for.
SHARE_MEASURES = ("positive", "absolute")


def category_relevance(component: np.ndarray, residual: np.ndarray,
                       probabilities: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """Relevance per category of each window.

    Parameters
    ----------
    component : ndarray (n, K)
        Relevance of each component (NaN columns = padding, ignored).
    residual : ndarray (n,)
        Relevance of the residual term.
    probabilities : ndarray (K, 7)
        ICLabel probabilities of the components.

    Returns
    -------
    dict
        ``(weighting, measure) -> ndarray (n, len(CATEGORIES))``.
    """
    component = np.nan_to_num(np.asarray(component, np.float64))
    residual = np.asarray(residual, np.float64)
    proba = np.asarray(probabilities, np.float64)
    hard = np.zeros_like(proba)
    hard[np.arange(len(proba)), np.argmax(proba, axis=1)] = 1.0
    measure_of: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "signed": lambda v: v, "positive": lambda v: np.clip(v, 0, None), "absolute": np.abs,
    }
    out = {}
    for weighting, weights in (("hard", hard), ("probability", proba)):
        for measure, func in measure_of.items():
            out[weighting, measure] = np.column_stack([func(component) @ weights,
                                                       func(residual)])
    return out


def unit_table(key: np.ndarray, cls: np.ndarray, subject: np.ndarray,
               categories: Mapping[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """Sum per-window category relevance into one row per unit, category, weighting, measure.

    Parameters
    ----------
    key, cls, subject : ndarray (n,)
        Per window: the filter's global key (:attr:`eegcrp.store.FilterKey.id`), the
        explained class (name) and the subject whose window it is.
    categories : mapping
        From :func:`category_relevance`.

    Returns
    -------
    DataFrame
        Columns ``key, class, subject, weighting, measure, category, relevance, n_pairs``.
    """
    index = pd.MultiIndex.from_arrays([np.asarray(key, object), np.asarray(cls, object),
                                       np.asarray(subject, object)],
                                      names=["key", "class", "subject"])
    counts = pd.Series(1, index=index).groupby(level=[0, 1, 2], sort=False).sum()
    parts = []
    for (weighting, measure), values in categories.items():
        frame = pd.DataFrame(np.asarray(values, np.float64), index=index,
                             columns=list(CATEGORIES))
        summed = frame.groupby(level=[0, 1, 2], sort=False).sum()
        long = summed.stack().rename("relevance").reset_index()
        long.columns = ["key", "class", "subject", "category", "relevance"]
        long["weighting"], long["measure"] = weighting, measure
        long["n_pairs"] = counts.reindex(
            pd.MultiIndex.from_frame(long[["key", "class", "subject"]])).to_numpy()
        parts.append(long)
    columns = ["key", "class", "subject", "weighting", "measure", "category", "relevance",
               "n_pairs"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def bootstrap_mean(values: np.ndarray, n_boot: int = 2000, ci: float = 0.95,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over rows (subjects) and a percentile bootstrap interval of it.

    Parameters
    ----------
    values : ndarray (n_subjects, m)
    n_boot : int
        Resamples of the rows (with replacement).
    ci : float
        Confidence level.
    seed : int

    Returns
    -------
    mean, low, high : ndarray (m,)
        NaN where no row is finite; a single subject gives ``low = high = mean``.
    """
    values = np.asarray(values, np.float64)
    with np.errstate(invalid="ignore"):
        count = np.isfinite(values).sum(0)
        mean = np.where(count > 0, np.nansum(values, 0) / np.maximum(count, 1), np.nan)
    if len(values) < 2:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    sample = values[idx]  # (n_boot, n, m)
    finite = np.isfinite(sample)
    n_ok = finite.sum(1)
    boot = np.where(n_ok > 0, np.where(finite, sample, 0).sum(1) / np.maximum(n_ok, 1),
                    np.nan)
    alpha = (1 - ci) / 2
    with np.errstate(invalid="ignore"):
        low, high = (np.nanquantile(boot, q, axis=0) if np.isfinite(boot).any() else
                     np.full(values.shape[1], np.nan) for q in (alpha, 1 - alpha))
    return mean, np.asarray(low), np.asarray(high)


def _assign(units: pd.DataFrame, groups: Mapping[Any, str] | None) -> pd.Series:
    """Group label of each unit row (NaN = not in any group)."""
    if groups is None:
        return units["class"].astype(str)
    keyed = {k: v for k, v in groups.items() if isinstance(k, tuple)}
    by_id = {k: v for k, v in groups.items() if not isinstance(k, tuple)}
    pairs = list(zip(units["key"], units["class"], strict=True))
    return pd.Series([keyed.get(p, by_id.get(p[0])) for p in pairs], index=units.index,
                     dtype=object)


def subject_shares(units: pd.DataFrame, groups: Mapping[Any, str] | None = None
                   ) -> pd.DataFrame:
    """Per group and subject, the share of each category (positive and absolute measures).

    Parameters
    ----------
    units : DataFrame
        The unit table (:func:`eegcrp.sources.load_sources` ``.units``): columns ``key``
        (:attr:`eegcrp.store.FilterKey.id`), ``class``, ``subject`` (whose windows),
        ``weighting``, ``measure``, ``category``, ``relevance``, ``n_pairs``.
    groups : mapping | None
        ``(key, class) -> label`` or ``key -> label`` (every class of that filter); units
        not in it are left out. None = one group per class.

    Returns
    -------
    DataFrame
        Columns ``group, subject, weighting, measure, category, relevance, share``.
    """
    frame = units[units["measure"].isin(SHARE_MEASURES)].copy()
    frame["group"] = _assign(frame, groups)
    frame = frame.dropna(subset=["group"])
    sums = (frame.groupby(["group", "subject", "weighting", "measure", "category"],
                          sort=False)["relevance"].sum().reset_index())
    totals = sums.groupby(["group", "subject", "weighting", "measure"])["relevance"] \
        .transform("sum")
    sums["share"] = np.where(totals > 0, sums["relevance"] / totals.where(totals > 0, 1),
                             np.nan)
    return sums


def group_shares(units: pd.DataFrame, groups: Mapping[Any, str] | None = None, *,
                 n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Share of each category per group: mean over subjects with a bootstrap interval.

    This is the function to call with pipeline B's cluster labels, e.g.
    ``group_shares(load_sources(out).units, {(key_id, class): cluster, ...})``.

    Parameters
    ----------
    units : DataFrame
        The unit table (see :func:`subject_shares`).
    groups : mapping | None
        ``(FilterKey.id, class) -> group label`` or ``FilterKey.id -> group label``; units
        not listed are left out. None = one group per class ("per class": all filters'
        selected windows of that class).
    n_boot, ci, seed
        Bootstrap resamples of subjects, confidence level, seed.

    Returns
    -------
    DataFrame
        One row per group, weighting (hard, probability), measure (positive, absolute) and
        category: ``share`` (mean over subjects of each subject's share), ``ci_low``,
        ``ci_high``, ``n_subjects`` and ``relevance`` (summed over subjects).
    """
    per_subject = subject_shares(units, groups)
    rows = []
    cats = list(CATEGORIES)
    for (group, weighting, measure), part in per_subject.groupby(
            ["group", "weighting", "measure"], sort=False):
        wide = part.pivot_table(index="subject", columns="category", values="share",
                                aggfunc="first").reindex(columns=cats)
        rel = part.groupby("category")["relevance"].sum().reindex(cats, fill_value=0.0)
        mean, low, high = bootstrap_mean(wide.to_numpy(), n_boot, ci, seed)
        for j, cat in enumerate(cats):
            rows.append({"group": group, "weighting": weighting, "measure": measure,
                         "category": cat, "share": mean[j], "ci_low": low[j],
                         "ci_high": high[j], "n_subjects": int(np.isfinite(
                             wide[cat].to_numpy()).sum()), "relevance": float(rel[cat])})
    return pd.DataFrame(rows, columns=["group", "weighting", "measure", "category", "share",
                                       "ci_low", "ci_high", "n_subjects", "relevance"])


def headline(shares: pd.DataFrame) -> dict[str, Any]:
    """Per group: brain share (hard labels, positive relevance) with interval, the three
    largest non-brain shares."""
    out: dict[str, Any] = {}
    for (group, weighting, measure), part in shares.groupby(["group", "weighting",
                                                             "measure"]):
        brain = part[part["category"] == "brain"].iloc[0]
        other = part[~part["category"].isin(["brain", "residual"])].nlargest(3, "share")
        out.setdefault(str(group), {})[f"{weighting}/{measure}"] = {
            "brain": [brain["share"], brain["ci_low"], brain["ci_high"]],
            "top_non_brain": {r["category"]: [r["share"], r["ci_low"], r["ci_high"]]
                              for _, r in other.iterrows()},
            "n_subjects": int(brain["n_subjects"]),
        }
    return out

"""Decoders compared within a dataset and across datasets, the way MOABB reports them.

Per dataset (:func:`paired_test`): the per-subject scores of two decoders, paired by
subject. The one-sided p-value of "the first scores higher" comes from a sign-flip
permutation test of the summed differences (exact up to 13 subjects, 10 000 seeded random
sign flips up to 19) or, from 20 subjects, the one-sided Wilcoxon signed-rank test; the
effect is the standardised mean difference (mean / sd of the paired differences).

Across datasets (:func:`combine`): Stouffer's method on the one-sided p-values and the mean of
the effects, both weighted by the square root of each dataset's number of subjects.

This is MOABB's meta-analysis (``moabb.analysis.meta_analysis``: ``compute_dataset_statistics``,
``combine_pvalues``, ``combine_effects``) restated on plain arrays, because MOABB is an
optional extra with heavy dependencies and its functions take its own results frame; the
tests check equal numbers against MOABB where it is installed. One difference: MOABB's
random permutations are unseeded, these are seeded (same inputs, same numbers).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Combined", "PairedTest", "combine", "paired_test"]

#: Subjects up to which the permutation test enumerates every sign flip.
EXACT_MAX = 13
#: Subjects from which the Wilcoxon signed-rank test replaces the permutation test.
WILCOXON_FROM = 20
#: Random sign flips between the two.
N_PERMUTATIONS = 10_000
# MOABB keeps one-sided p-values inside (0, 1) so that Stouffer's z stays finite.
_P_FLOOR, _P_CEIL = np.finfo(float).tiny, 1.0 - np.finfo(float).eps


@dataclass(frozen=True)
class PairedTest:
    """One dataset's comparison of decoder ``a`` with ``b`` (``a`` better: small p)."""

    n: int
    mean_difference: float
    ci: tuple[float, float]
    smd: float
    p: float
    test: str


def _smd(diff: np.ndarray) -> float:
    if np.all(diff == diff[0]):
        return 0.0 if diff[0] == 0 else float(np.copysign(np.inf, diff[0]))
    return float(diff.mean() / diff.std(ddof=1))


def _sign_flip_p(diff: np.ndarray, seed: int) -> float:
    n = len(diff)
    # Sums in another order differ in the last bits: a flip reaching the observed sum
    # within rounding is a tie (scores are multiples of 1 / windows, so ties are real).
    true = diff.sum() - 1e-10 * np.abs(diff).sum()
    if n <= EXACT_MAX:
        flips = np.array(list(itertools.product([-1, 1], repeat=n)), np.float64)
        count, total = int(((flips @ diff) >= true).sum()), len(flips)
    else:
        rng = np.random.default_rng(seed)
        flips = rng.choice([-1.0, 1.0], size=(N_PERMUTATIONS, n))
        count, total = 1 + int(((flips @ diff) >= true).sum()), N_PERMUTATIONS
    return min(count, total - 1) / total


def _wilcoxon_p(diff: np.ndarray) -> float:
    if np.all(diff == 0):
        return 0.5
    p = float(stats.wilcoxon(diff).pvalue) / 2
    if diff.mean() < 0:
        p = 1 - p
    return min(max(p, _P_FLOOR), _P_CEIL)


def paired_test(a: Sequence[float], b: Sequence[float], *, seed: int = 0,
                ci: float = 0.95) -> PairedTest:
    """Is decoder ``a`` better than ``b`` on the same subjects? (see the module docstring)"""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if diff.ndim != 1 or len(diff) < 2:
        raise ValueError("a paired test needs the scores of at least 2 subjects")
    n = len(diff)
    if n >= WILCOXON_FROM:
        p, test = _wilcoxon_p(diff), "Wilcoxon signed-rank"
    else:
        p = _sign_flip_p(diff, seed)
        test = "exact sign-flip" if n <= EXACT_MAX else "sign-flip (10 000)"
    half = (stats.t.ppf(0.5 + ci / 2, n - 1) * diff.std(ddof=1) / np.sqrt(n))
    return PairedTest(n, float(diff.mean()), (float(diff.mean() - half),
                                              float(diff.mean() + half)),
                      _smd(diff), float(p), test)


@dataclass(frozen=True)
class Combined:
    """The comparison combined across datasets."""

    n_datasets: int
    n_subjects: int
    smd: float
    p: float


def combine(tests: Sequence[PairedTest]) -> Combined:
    """Stouffer's p and the mean effect, weighted by sqrt(subjects) per dataset."""
    if not tests:
        raise ValueError("nothing to combine")
    w = np.sqrt([t.n for t in tests])
    p = [t.p for t in tests]
    combined_p = p[0] if len(p) == 1 else float(
        stats.combine_pvalues(p, method="stouffer", weights=w).pvalue)
    smd = float((w / w.sum() * np.array([t.smd for t in tests])).sum())
    return Combined(len(tests), int(sum(t.n for t in tests)), smd, float(combined_p))

"""Group tests across subjects: sign-flip permutation or Wilcoxon, FDR, effect sizes.

Every test here takes one value per subject and cell (``(n_subjects, n_cells)``; NaN =
subject missing in that cell) and asks whether the cell's mean differs from 0:

* :func:`sign_flip_test`: two-sided permutation test of the mean under the null of a
  distribution symmetric about 0 (each subject's sign flipped at random). With at most
  :data:`EXACT_MAX` subjects all ``2^n`` sign patterns are enumerated (exact p-value);
  otherwise ``n_permutations`` random patterns with ``p = (1 + #{|T*| >= |T|}) / (1 + B)``.
* :func:`wilcoxon_test`: Wilcoxon signed-rank (scipy), per cell.
* :func:`fdr_bh`: Benjamini-Hochberg adjusted p-values and rejections.
* :func:`effect_size`: Cohen's ``d_z`` (mean / SD of the subjects' values).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["EXACT_MAX", "effect_size", "fdr_bh", "group_test", "sign_flip_test",
           "wilcoxon_test"]

#: Largest subject count whose sign patterns are all enumerated (2^13 = 8192).
EXACT_MAX = 13


def _flips(n: int, n_permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    if n <= EXACT_MAX:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n))), True
    return rng.choice((1.0, -1.0), size=(n_permutations, n)), False


def sign_flip_test(values: np.ndarray, n_permutations: int = 10000, seed: int = 0
                   ) -> np.ndarray:
    """Two-sided sign-flip permutation p-value of the mean of each column.

    Parameters
    ----------
    values : ndarray (n_subjects, n_cells)
        NaN entries are left out of their column (its own subject count).
    n_permutations : int
        Random sign patterns when the exact enumeration is too large.
    seed : int

    Returns
    -------
    ndarray (n_cells,)
        p-values (NaN for columns with fewer than 2 finite values or all zeros).
    """
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    rng = np.random.default_rng(seed)
    out = np.full(values.shape[1], np.nan)
    finite = np.isfinite(values)
    # columns with the same missing pattern share their sign patterns
    patterns: dict[bytes, list[int]] = {}
    for j in range(values.shape[1]):
        patterns.setdefault(finite[:, j].tobytes(), []).append(j)
    for key, cols in patterns.items():
        mask = np.frombuffer(key, dtype=bool)
        n = int(mask.sum())
        if n < 2:
            continue
        x = values[np.ix_(mask, cols)]
        flips, exact = _flips(n, n_permutations, rng)
        observed = np.abs(x.mean(0))
        null = np.abs(flips @ x / n)  # (patterns, cells)
        tol = 1e-12 * np.maximum(np.abs(x).max(0), 1e-300)
        hits = (null >= observed - tol).sum(0)
        p = hits / len(flips) if exact else (1 + hits) / (1 + len(flips))
        p[np.all(x == 0, axis=0)] = np.nan
        out[cols] = p
    return out


def wilcoxon_test(values: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-value of each column (NaN entries left out)."""
    from scipy.stats import wilcoxon

    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    out = np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        x = values[np.isfinite(values[:, j]), j]
        if len(x) >= 2 and np.any(x != 0):
            out[j] = float(wilcoxon(x, zero_method="wilcox").pvalue)
    return out


def fdr_bh(p: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg: rejections at FDR ``alpha`` and adjusted p-values.

    NaN p-values are not tested (never rejected, adjusted NaN) and do not count in ``m``.
    """
    from scipy.stats import false_discovery_control

    p = np.asarray(p, np.float64)
    adjusted = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():  # scipy refuses NaN: adjust the tested p-values only
        adjusted[ok] = false_discovery_control(p[ok], method="bh")
    return np.where(ok, adjusted <= alpha, False), adjusted


def effect_size(values: np.ndarray) -> np.ndarray:
    """Cohen's d_z of each column: mean / SD (ddof 1) of the finite values."""
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    out = np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        x = values[np.isfinite(values[:, j]), j]
        if len(x) >= 2:
            sd = x.std(ddof=1)
            out[j] = x.mean() / sd if sd > 0 else np.nan
    return out


def group_test(values: np.ndarray, test: str = "permutation", n_permutations: int = 10000,
               seed: int = 0) -> dict[str, np.ndarray]:
    """Mean, d_z, p-value and subject count of each column (see the module docstring)."""
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    p = (sign_flip_test(values, n_permutations, seed) if test == "permutation"
         else wilcoxon_test(values))
    count = np.isfinite(values).sum(0)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.nansum(values, 0) / np.maximum(count, 1), np.nan)
    return {"mean": mean, "dz": effect_size(values), "p": p, "n_subjects": count}

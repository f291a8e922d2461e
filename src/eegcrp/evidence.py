"""Evidence gates: what a study's summary may claim, with its uncertainty.

Each gate turns verified results into a verdict and the numbers behind it:

* :func:`decoding_evidence`: did the decoder learn the task? Per held-out subject the score
  (mean over repetitions) against chance, tested across subjects (one-sided one-sample
  t-test, 95 % t interval of the mean) beside the per-subject permutation thresholds.
  Every relevance, concept, source and region headline of a model that did not learn the
  task describes that model, not the task.
* :func:`faithfulness_evidence`: does removing the most relevant units first lower the
  decision score more than removing random units? A paired one-sided t-test over held-out
  subjects of ``AOPC(most relevant first) - AOPC(random)`` and the effect size ``d_z``; the
  difference is on the decision score's scale (logit units). "faithful" needs both
  ``p < alpha`` and ``d_z >= min_dz``.
* :func:`iclabel_conditions`: do the data meet what ICLabel assumes (channel count, band,
  common average reference, samples per component, extended infomax)? When one does not,
  the brain share is withheld as a finding and given as "not interpretable", with reasons.

Subjects, not windows, are the unit of every test: windows of one subject are not
independent, and a claim about a task is a claim about subjects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["MIN_SUBJECTS", "Condition", "DecodingEvidence", "decoding_evidence",
           "faithfulness_evidence", "faithfulness_table", "iclabel_conditions",
           "pooled_conditions", "t_interval"]

#: Fewest held-out subjects a test across subjects is run on.
MIN_SUBJECTS = 3


def t_interval(values: Sequence[float], ci: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (NaN with fewer than two)."""
    x = np.asarray(values, np.float64)
    if len(x) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + ci / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def _one_sided_t(diff: np.ndarray) -> tuple[float, float]:
    """``(t, p)`` of ``mean(diff) > 0``; a constant difference gives p 0 or 1."""
    sd = diff.std(ddof=1)
    if sd == 0:
        return (float("inf"), 0.0) if diff.mean() > 0 else (float("-inf"), 1.0)
    res = stats.ttest_1samp(diff, 0.0, alternative="greater")
    return float(res.statistic), float(res.pvalue)


@dataclass(frozen=True)
class DecodingEvidence:
    """Decoding against chance across held-out subjects (see :func:`decoding_evidence`)."""

    score: str
    n_subjects: int
    mean: float
    ci_low: float
    ci_high: float
    chance: float
    t: float
    p: float
    alpha: float
    above: int
    learned: bool | None  # None: too few subjects to test

    @property
    def verdict(self) -> str:
        if self.learned is None:
            return "not testable"
        return "above chance" if self.learned else "not above chance"


def decoding_evidence(per_subject: pd.Series, chance: float, thresholds: pd.Series, *,
                      score: str = "accuracy", alpha: float = 0.05, ci: float = 0.95
                      ) -> DecodingEvidence:
    """Is decoding above chance across subjects?

    Parameters
    ----------
    per_subject : Series
        Held-out subject -> score (mean over repetitions).
    chance : float
        The score of guessing (``1 / n_classes`` for accuracy and balanced accuracy).
    thresholds : Series
        Held-out subject -> its permutation threshold (p < 0.05), for the count above it.
    score, alpha, ci
        The score's name, the test's level and the interval's coverage.
    """
    x = per_subject.to_numpy(np.float64)
    n = len(x)
    lo, hi = t_interval(x, ci)
    above = int((per_subject > thresholds.reindex(per_subject.index)).sum())
    if n < MIN_SUBJECTS:
        t, p, learned = float("nan"), float("nan"), None
    else:
        t, p = _one_sided_t(x - chance)
        learned = bool(p < alpha)
    return DecodingEvidence(score, n, float(x.mean()) if n else float("nan"), lo, hi,
                            float(chance), t, p, alpha, above, learned)


def faithfulness_evidence(aopc: pd.DataFrame, method: str, *, alpha: float = 0.05,
                          min_dz: float = 0.5, ci: float = 0.95) -> pd.DataFrame:
    """Relevance-ordered removal against random removal, per domain, tested over subjects.

    Parameters
    ----------
    aopc : DataFrame
        The evaluate stage's ``aopc.csv`` (``subject``, ``method``, ``domain``,
        ``aopc_morf``, ``aopc_random``).
    method : str
        The explanation method (``lrp:<composite>``).
    alpha, min_dz, ci
        The test's level, the smallest effect size called faithful, the interval.

    Returns
    -------
    DataFrame
        One row per domain: ``n_subjects``, ``aopc_morf``, ``aopc_random`` (means over
        subjects), ``difference`` with ``ci_low``/``ci_high`` (logit units), ``d_z``, ``t``,
        ``p``, ``verdict`` ("faithful", "weakly faithful", "indistinguishable from random",
        "not testable").
    """
    rows = aopc[aopc["method"] == method]
    key = "subject" if "subject" in rows.columns else "fold"
    out = []
    for domain, part in rows.groupby("domain", sort=False):
        per = part.groupby(key)[["aopc_morf", "aopc_random"]].mean()
        diff = (per["aopc_morf"] - per["aopc_random"]).to_numpy(np.float64)
        n = len(diff)
        lo, hi = t_interval(diff, ci)
        sd = diff.std(ddof=1) if n > 1 else float("nan")
        d_z = float(diff.mean() / sd) if n > 1 and sd > 0 else (
            float("inf") * np.sign(diff.mean()) if n > 1 and diff.mean() != 0 else float("nan"))
        if n < MIN_SUBJECTS:
            t, p, verdict = float("nan"), float("nan"), "not testable"
        else:
            t, p = _one_sided_t(diff)
            if p < alpha and d_z >= min_dz:
                verdict = "faithful"
            elif p < alpha:
                verdict = "weakly faithful"
            else:
                verdict = "indistinguishable from random"
        out.append({"method": method, "domain": domain, "n_subjects": n,
                    "aopc_morf": float(per["aopc_morf"].mean()),
                    "aopc_random": float(per["aopc_random"].mean()),
                    "difference": float(diff.mean()), "ci_low": lo, "ci_high": hi,
                    "d_z": d_z, "t": t, "p": p, "alpha": alpha, "min_dz": min_dz,
                    "verdict": verdict})
    return pd.DataFrame(out)


def faithfulness_table(aopc: pd.DataFrame, methods: Sequence[str], **kwargs: Any
                       ) -> list[dict[str, Any]]:
    """:func:`faithfulness_evidence` of every method, as rows (the evaluate stage's
    ``faithfulness.csv``)."""
    if aopc.empty:
        return []
    parts = [faithfulness_evidence(aopc, m, **kwargs) for m in methods]
    return pd.concat(parts, ignore_index=True).to_dict(orient="records") if parts else []


@dataclass(frozen=True)
class Condition:
    """One assumption of ICLabel: whether it holds, what the data have, what it needs.

    A ``required`` condition that fails makes the labels uninterpretable; an advisory one
    makes them less reliable and is stated beside the number.
    """

    name: str
    holds: bool
    value: str
    needed: str
    required: bool


def iclabel_conditions(*, n_channels: int, band: tuple[float, float], car: bool,
                       n_samples: int, n_components: int, extended_infomax: bool,
                       min_channels: int = 16, samples_factor: float = 20.0
                       ) -> list[Condition]:
    """ICLabel's assumptions checked on one decomposition.

    ICLabel was trained on extended-infomax decompositions of 1-100 Hz, common-average
    referenced EEG, and classifies each component from its power spectrum and its scalp
    topography interpolated on a grid. Required: the channel count (``min_channels`` is
    eegcrp's threshold; below it the interpolated topography rests on few points), the
    reference and the decomposition. Advisory: the band (a study at 128 Hz cannot hold
    1-100 Hz; the spectra lack the high frequencies that mark muscle) and the samples rule
    (``samples_factor x K²``, the usual one for a stable decomposition).
    """
    lo, hi = float(band[0]), float(band[1])
    need = samples_factor * n_components**2
    return [
        Condition("channels", n_channels >= min_channels, f"{n_channels}",
                  f">= {min_channels}", True),
        Condition("band", lo <= 1.0 + 1e-9 and hi >= 100.0 - 1e-9, f"{lo:g}-{hi:g} Hz",
                  "1-100 Hz", False),
        Condition("reference", bool(car), "common average" if car else "as recorded",
                  "common average", True),
        Condition("samples", n_samples >= need, f"{n_samples} for {n_components} components",
                  f">= {samples_factor:g} x {n_components}² = {need:.0f}", False),
        Condition("decomposition", bool(extended_infomax),
                  "extended infomax" if extended_infomax else "other",
                  "extended infomax", True),
    ]


def pooled_conditions(per_subject: dict[str, list[Condition]]) -> list[dict[str, Any]]:
    """Each condition over subjects: it holds for the study when it holds for every subject;
    ``failing`` names the subjects where it does not."""
    out: dict[str, dict[str, Any]] = {}
    for subject, conditions in per_subject.items():
        for c in conditions:
            rec = out.setdefault(c.name, {"name": c.name, "needed": c.needed,
                                          "required": c.required, "values": [],
                                          "failing": [], "n_subjects": 0})
            rec["n_subjects"] += 1
            if c.value not in rec["values"]:
                rec["values"].append(c.value)
            if not c.holds:
                rec["failing"].append(subject)
    for rec in out.values():
        rec["holds"] = not rec["failing"]
    return list(out.values())

"""The summary's lines: each true as worded, with its uncertainty, gated by the evidence.

Every function turns one stage's verified results into a :class:`Headline`: its HTML text,
the CSV files it came from (relative to the run folder) and the report section that shows
it. The numbers behind each verdict come from :mod:`eegcrp.evidence`; this module words
them and never computes a statistic of its own.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..controls import frontal_edge
from ..evidence import (
    DecodingEvidence,
    decoding_evidence,
    faithfulness_evidence,
    t_interval,
)

__all__ = ["MIN_REGIONS", "MODEL_NAMES", "Headline", "comparison_headline",
           "decoding_headline", "dominant_bands",
           "faithfulness_headline", "likely_confounds", "regions_headline",
           "relevance_headline", "sources_headline"]

#: Fewest scalp regions with channels for region x band cells to localise anything.
MIN_REGIONS = 4


@dataclass
class Headline:
    """One summary line: HTML text, the CSVs behind it, the section that shows it."""

    text: str
    sources: list[str] = field(default_factory=list)
    section: str = ""


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def _p(p: float) -> str:
    return "n/a" if p != p else ("p &lt; 0.001" if p < 0.001 else f"p = {p:.3f}")


def decoding_headline(cs: dict[str, Any], *, alpha: float = 0.05,
                      ensemble: pd.Series | None = None) -> tuple[Headline, DecodingEvidence]:
    """The decoding line from :func:`eegcrp.report.training_section.classification_summary`,
    with the test across held-out subjects (:func:`eegcrp.evidence.decoding_evidence`).

    By default each held-out subject's score is its single models' mean over repetitions;
    ``ensemble`` (subject -> score of its repetition ensemble) replaces it
    (``decoding.headline: ensemble``)."""
    score = cs["score"]
    reps = int(cs["metrics"]["repetition"].nunique())
    if ensemble is None:
        per = cs["metrics"].groupby("test_subject")[score].mean()
        which = (f"single models, mean over {reps} repetitions" if reps > 1
                 else "one model per held-out subject")
    else:
        per, which = ensemble, f"repetition ensembles of {reps} models"
    ev = decoding_evidence(per, cs["chance"], cs["threshold"], score=score, alpha=alpha)
    label = score.replace("_", " ")
    numbers = (f"{label} <b>{ev.mean:.3f}</b> ({which}; 95 % CI {ev.ci_low:.3f}-"
               f"{ev.ci_high:.3f} over {ev.n_subjects} held-out subjects), chance "
               f"{ev.chance:.2f}")
    per_subject = (f"{ev.above} of {ev.n_subjects} held-out subjects above their own "
                   "permutation threshold (p &lt; 0.05)")
    if ev.learned is None:
        text = (f"Decoding (leave-one-subject-out): {numbers}; <b>not testable against chance "
                f"across subjects</b> with {ev.n_subjects} (at least 3 needed); {per_subject}. "
                "The lines below describe the models, not yet the task.")
    elif ev.learned:
        text = (f"Decoding (leave-one-subject-out): {numbers}; above chance across subjects "
                f"(one-sided t-test, {_p(ev.p)}); {per_subject}.")
    else:
        text = (f"<b>The decoder did not learn the task</b>: {numbers}; not above chance "
                f"across subjects (one-sided t-test, {_p(ev.p)}); {per_subject}. Every line "
                "below describes a model that did not learn the task: do not read it as a "
                "finding about the task.")
    return Headline(text, ["training/metrics.csv"], "Classification"), ev


#: How the decoding stage's models are named in the summary.
MODEL_NAMES = {"eegnet": "EEGNet", "eegnet_ensemble": "EEGNet repetition ensemble",
               "logbp+lr": "log band power + LR", "ts+lr": "tangent space + LR"}


def comparison_headline(summary: dict[str, Any], headline: str = "single"
                        ) -> Headline | None:
    """EEGNet against its repetition ensemble and the same-fold baselines (the ``decoding``
    stage's summary): each model's mean with its interval, and the paired test."""
    models, versus = summary.get("models", {}), summary.get("versus_eegnet", {})
    if "eegnet" not in models or not versus:
        return None
    eeg = models["eegnet"]
    parts = []
    for name, test in versus.items():
        m = models[name]
        diff = test["difference"]
        word = "above" if diff > 0 else "below"
        parts.append(
            f"{MODEL_NAMES.get(name, html.escape(name))} {m['mean']:.3f} (CI {m['ci'][0]:.3f}-"
            f"{m['ci'][1]:.3f}): EEGNet {abs(diff):.3f} {word} it (95 % CI {test['ci'][0]:+.3f}"
            f" to {test['ci'][1]:+.3f}, SMD {test['smd']:+.2f}, {test['test']} "
            f"{_p(test['p_eegnet_better'])} for EEGNet better)")
    lead = ("the summary's decoding line uses the repetition ensembles" if headline ==
            "ensemble" else "the decoding line above uses the single models, which are the "
            "models explained")
    return Headline(
        f"Same folds, {summary.get('score', 'balanced_accuracy').replace('_', ' ')}: EEGNet "
        f"{eeg['mean']:.3f} (CI {eeg['ci'][0]:.3f}-{eeg['ci'][1]:.3f}); " + "; ".join(parts)
        + f" ({lead}).", ["decoding/scores.csv"], "Classification")


def dominant_bands(run: Any, n_channels: int = 3) -> dict[str, dict[str, Any]]:
    """Per class, the band holding most positive relevance, its top channels, and the
    band's share per held-out subject with a 95 % t interval over subjects.

    Relevance is that of each held-out subject's repetition ensemble: the mean over its R
    models' maps (:mod:`eegcrp.training.ensemble` says why that is the ensemble's LRP), all
    filters pooled (a class-level statement needs no concept clusters). The band is chosen
    on the sum over subjects; the interval treats each subject as one observation.
    """
    bands = run.band_relevance()  # fold, class, filter, channel, band
    per_fold = bands.clip(min=0).sum("filter")  # fold, class, channel, band
    ensembles = per_fold.groupby("subject").mean()  # subject, class, channel, band
    positive = ensembles.sum("subject")  # class, channel, band
    out = {}
    for cls in positive["class"].values:
        per = positive.sel({"class": cls})
        share = per.sum("channel") / max(float(per.sum()), 1e-30)
        band = str(share.idxmax("band").values)
        chans = per.sel(band=band).sortby(per.sel(band=band), ascending=False)
        subj = ensembles.sel({"class": cls}).sum("channel")  # subject, band
        by_subject = (subj.sel(band=band) / subj.sum("band").clip(min=1e-30)).values
        lo, hi = t_interval(by_subject)
        out[str(cls)] = {"band": band, "share": float(share.max()),
                         "channels": [str(c) for c in chans["channel"].values[:n_channels]],
                         "ci": (lo, hi), "n_subjects": len(by_subject)}
    return out


def relevance_headline(dominant: dict[str, dict[str, Any]]) -> Headline:
    parts = []
    for c, d in dominant.items():
        lo, hi = d.get("ci", (float("nan"),) * 2)
        interval = (f", 95 % CI {_pct(lo)}-{_pct(hi)} over {d['n_subjects']} held-out "
                    "subjects' models" if lo == lo else "")
        parts.append(f"{html.escape(c)}: {html.escape(d['band'])} ({_pct(d['share'])} of "
                     f"positive relevance{interval}), strongest at "
                     f"{html.escape(', '.join(d['channels']))}")
    return Headline("Where the evidence lies (all filters; each held-out subject's repetition "
                    "ensemble, its models' relevance averaged): " + "; ".join(parts) + ".",
                    ["explain/folds/"], "Relevance")


def _conditions_text(conditions: list[dict[str, Any]]) -> str:
    return "; ".join(f"{c['name']} {html.escape(', '.join(c['values']))} (ICLabel assumes "
                     f"{html.escape(c['needed'])})" for c in conditions)


def sources_headline(manifest: Any) -> Headline | None:
    """The brain share of positive relevance (hard ICLabel labels), or why it is not
    interpretable: ICLabel's required conditions (:func:`eegcrp.evidence.iclabel_conditions`)
    not met. Advisory conditions not met are stated beside the number."""
    summary = manifest.extra.get("summary") if manifest is not None else None
    rec = (summary or {}).get("all", {}).get("hard/positive")
    if not rec:
        return None
    brain = rec["brain"]
    ci = (getattr(manifest, "config", None) or {}).get("sources", {}).get("ci", 0.95)
    conditions = manifest.extra.get("iclabel_conditions", [])
    failed_required = [c for c in conditions if c["required"] and not c["holds"]]
    failed_advisory = [c for c in conditions if not c["required"] and not c["holds"]]
    head = f"Sources (ICA + ICLabel, {rec['n_subjects']} subjects): "
    files = ["sources/shares.csv", "sources/components.csv"]
    if failed_required:
        text = (head + "the brain share is <b>not interpretable</b> here: "
                + _conditions_text(failed_required)
                + f". Measured {_pct(brain[0])}, shown in the section for inspection only.")
        return Headline(text, files, "Independent components")
    others = sorted(rec.get("top_non_brain", {}).items(), key=lambda kv: -kv[1][0])
    text = (head + f"brain components carry <b>{_pct(brain[0])}</b> of the positive relevance "
            f"({100 * ci:.0f} % CI {_pct(brain[1])}-{_pct(brain[2])})")
    if others:
        text += "; then " + ", ".join(
            f"{html.escape(k.replace('_', ' '))} {_pct(v[0])}" for k, v in others)
    if brain[2] < 0.5:
        text += (". Most of the decision is not attributed to brain components: read the "
                 "artefact components and the region x band cells before the filters")
    if failed_advisory:
        text += (". Labels less reliable: " + _conditions_text(failed_advisory))
    return Headline(text + ".", files, "Independent components")


def regions_headline(manifest: Any, n_cells: int = 3) -> Headline | None:
    """Per class, the region x band cells with significantly more positive relevance than
    their channel count predicts (FDR-corrected); says when the montage covers too few
    regions to localise."""
    if manifest is None or "significant" not in manifest.extra:
        return None
    alpha = manifest.extra.get("alpha", 0.05)
    regions = (manifest.extra.get("layout") or {}).get("regions", {})
    covered = [r for r, n in regions.items() if n]
    coverage = ""
    if regions and len(covered) < MIN_REGIONS:
        coverage = (f" The montage covers only {len(covered)} scalp region(s) "
                    f"({html.escape(', '.join(r.replace('_', ' ') for r in covered))}): the "
                    "cells compare few areas and cannot localise beyond them.")
    parts = []
    for cls, cells in manifest.extra["significant"].get("positive", {}).items():
        over = sorted((c for c in cells if c["excess"] > 0), key=lambda c: -c["excess"])
        cells_text = ", ".join(f"{html.escape(c['region'].replace('_', ' '))} "
                               f"{html.escape(c['band'])} (x{c['ratio']:.2f})"
                               for c in over[:n_cells]) or "none"
        parts.append(f"{html.escape(cls)}: {cells_text}")
    files = ["regions/cells.csv", "regions/subject_cells.csv"]
    if not parts:
        return Headline(f"Regions: no region x band cell holds more positive relevance than "
                        f"its channel count predicts (FDR {alpha}).{coverage}", files,
                        "Scalp regions")
    return Headline("Regions (more positive relevance than the channel count predicts, FDR "
                    f"{alpha}): " + "; ".join(parts) + "." + coverage, files, "Scalp regions")


def faithfulness_headline(table: pd.DataFrame, aopc: pd.DataFrame, method: str, *,
                          alpha: float = 0.05, min_dz: float = 0.5) -> Headline | None:
    """Per domain, the verdict of the faithfulness test (the evaluate stage's
    ``faithfulness.csv``; computed from ``aopc.csv`` for runs without it)."""
    rows = table[table["method"] == method] if len(table) else table
    if rows is None or not len(rows):
        if aopc.empty or "subject" not in aopc.columns:
            return None
        rows = faithfulness_evidence(aopc, method, alpha=alpha, min_dz=min_dz)
    if rows.empty:
        return None
    parts = []
    for _, r in rows.iterrows():
        numbers = (f"AOPC {r['aopc_morf']:.2f} vs random {r['aopc_random']:.2f}, difference "
                   f"{r['difference']:+.2f} logit (95 % CI {r['ci_low']:+.2f} to "
                   f"{r['ci_high']:+.2f}), d_z {r['d_z']:.2f}, {_p(r['p'])}")
        parts.append(f"{html.escape(r['domain'])} <b>{html.escape(r['verdict'])}</b> "
                     f"({numbers})")
    n = int(rows["n_subjects"].max())
    return Headline(
        f"Faithfulness of {html.escape(method)} (removal in order of relevance against "
        f"random order, paired over {n} held-out subjects; faithful = one-sided t-test "
        f"p &lt; {rows['alpha'].iloc[0]:g} and d_z &ge; {rows['min_dz'].iloc[0]:g}): "
        + "; ".join(parts) + ".", ["evaluate/faithfulness.csv", "evaluate/aopc.csv"],
        "Explanation quality")


def likely_confounds(sources: Any, dominant: dict[str, dict[str, Any]] | None
                     ) -> list[str]:
    """Plain reasons to suspect a confound: relevance on eye or muscle components above the
    brain share, or a class whose relevance peaks in delta at frontal-edge channels."""
    out = []
    rec = ((sources.extra.get("summary") or {}).get("all", {}).get("hard/positive")
           if sources is not None else None)
    if rec:
        brain = rec["brain"][0]
        for cat in ("eye", "muscle"):
            share = rec.get("top_non_brain", {}).get(cat)
            if share and share[0] > brain:
                out.append(f"{cat} components carry more relevance ({_pct(share[0])}) than "
                           f"brain components ({_pct(brain)})")
    for cls, d in (dominant or {}).items():
        edge = frontal_edge(d["channels"])
        if d["band"] == "delta" and edge:
            out.append(f"{html.escape(cls)}: relevance peaks in delta at frontal-edge channels "
                       f"({html.escape(', '.join(edge))}), where eye movements are largest")
    return out

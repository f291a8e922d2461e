"""The report's first section (what a PI reads first) and its last (how it was made).

The summary states, from the verified results present: the decoding accuracy with its
chance level and how many held-out subjects beat their permutation threshold; where and in
which band the relevance of each class lies (the explain store, all filters pooled); the
share of relevance on brain components and the dominant region x band cells when the
sources and regions stages ran; and the faithfulness verdict of the evaluate stage. The run
metadata list the configuration, the package versions and every stage manifest's identity,
digest and wall time.
"""

from __future__ import annotations

import html
from typing import Any

import mne
import yaml

from ..results import load_evaluation
from ..store import open_relevance
from .context import ReportContext
from .quality_section import faithfulness_verdict
from .training_section import classification_summary

__all__ = ["add_metadata_section", "add_summary_section", "dominant_bands", "regions_headline",
           "sources_headline"]

SUMMARY = "Summary"
METADATA = "Run metadata"


def dominant_bands(run: Any, n_channels: int = 3) -> dict[str, dict[str, Any]]:
    """Per class, the band holding most positive relevance and its top channels.

    All filters and folds pooled (a class-level statement needs no concept clusters).
    """
    bands = run.band_relevance()  # fold, class, filter, channel, band
    positive = bands.clip(min=0).sum(("fold", "filter"))  # class, channel, band
    out = {}
    for cls in positive["class"].values:
        per = positive.sel({"class": cls})
        share = per.sum("channel") / max(float(per.sum()), 1e-30)
        band = str(share.idxmax("band").values)
        chans = per.sel(band=band).sortby(per.sel(band=band), ascending=False)
        out[str(cls)] = {"band": band, "share": float(share.max()),
                         "channels": [str(c) for c in chans["channel"].values[:n_channels]]}
    return out


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def sources_headline(manifest: Any) -> str | None:
    """The brain share of positive relevance (hard ICLabel labels) and the largest others."""
    summary = manifest.extra.get("summary") if manifest is not None else None
    rec = (summary or {}).get("all", {}).get("hard/positive")
    if not rec:
        return None
    brain = rec["brain"]
    ci = (getattr(manifest, "config", None) or {}).get("sources", {}).get("ci", 0.95)
    others = sorted(rec.get("top_non_brain", {}).items(), key=lambda kv: -kv[1][0])
    text = (f"Sources (ICA + ICLabel, {rec['n_subjects']} subjects): brain components carry "
            f"<b>{_pct(brain[0])}</b> of the positive relevance ({100 * ci:.0f} % CI "
            f"{_pct(brain[1])}-{_pct(brain[2])})")
    if others:
        text += "; then " + ", ".join(
            f"{html.escape(k.replace('_', ' '))} {_pct(v[0])}" for k, v in others)
    if brain[2] < 0.5:
        text += (". Most of the decision is not attributed to brain components: read the "
                 "artefact components and the region x band cells before the filters")
    return text + "."


def regions_headline(manifest: Any, n_cells: int = 3) -> str | None:
    """Per class, the region x band cells with significantly more positive relevance than
    their channel count predicts (FDR-corrected)."""
    if manifest is None or "significant" not in manifest.extra:
        return None
    alpha = manifest.extra.get("alpha", 0.05)
    parts = []
    for cls, cells in manifest.extra["significant"].get("positive", {}).items():
        over = sorted((c for c in cells if c["excess"] > 0), key=lambda c: -c["excess"])
        cells_text = ", ".join(f"{html.escape(c['region'].replace('_', ' '))} "
                               f"{html.escape(c['band'])} (x{c['ratio']:.2f})"
                               for c in over[:n_cells]) or "none"
        parts.append(f"{html.escape(cls)}: {cells_text}")
    if not parts:
        return (f"Regions: no region x band cell holds more positive relevance than its "
                f"channel count predicts (FDR {alpha}).")
    return ("Regions (more positive relevance than the channel count predicts, FDR "
            f"{alpha}): " + "; ".join(parts) + ".")


def _item(text: str) -> str:
    return f"<li>{text}</li>"


def add_summary_section(report: mne.Report, ctx: ReportContext) -> None:
    """The summary a PI reads first (see the module docstring)."""
    items = []
    prepared = ctx.manifests["prepare"].extra["dataset"]
    items.append(_item(
        f"Data: <b>{html.escape(prepared['name'])}</b> ({prepared['task'].replace('_', ' ')}), "
        f"{len(prepared['subjects'])} subjects, classes "
        f"{html.escape(', '.join(prepared['classes']))}."))
    if "train" in ctx.manifests:

        cs = classification_summary(ctx)
        if cs is not None:
            label = cs["score"].replace("_", " ")
            items.append(_item(
                f"Decoding (leave-one-subject-out): {label} <b>{cs['mean']:.3f}</b> "
                f"(sd {cs['sd']:.3f} over subjects x repetitions), chance {cs['chance']:.2f}; "
                f"{cs['above']} of {cs['n_subjects']} held-out subjects above their "
                "permutation threshold (p &lt; 0.05)."))
    if "explain" in ctx.manifests:

        run = open_relevance(ctx.folder("explain"))
        if run.folds:
            parts = [f"{html.escape(c)}: {html.escape(d['band'])} "
                     f"({100 * d['share']:.0f} % of positive relevance), strongest at "
                     f"{html.escape(', '.join(d['channels']))}"
                     for c, d in dominant_bands(run).items()]
            items.append(_item("Where the evidence lies (all filters): " + "; ".join(parts)
                               + "."))
    for text in (sources_headline(ctx.manifests.get("sources")),
                 regions_headline(ctx.manifests.get("regions"))):
        if text:
            items.append(_item(text))
    if "evaluate" in ctx.manifests:

        aopc = load_evaluation(ctx.folder("evaluate"))["aopc"]
        if not aopc.empty:
            verdict = faithfulness_verdict(aopc, f"lrp:{ctx.config.explain.composite}")
            items.append(_item(f"Faithfulness: {html.escape(verdict)}."))
    report.add_html("<ul>" + "".join(items) + "</ul>", title="At a glance", section=SUMMARY)


def add_metadata_section(report: mne.Report, ctx: ReportContext) -> None:
    """Configuration, package versions and the stage manifests' identities and timings."""
    rows = []
    versions: dict[str, str] = {}
    for name, manifest in ctx.manifests.items():
        versions.update((manifest.environment or {}).get("versions", {}))
        wall = manifest.timings.get("wall_time_s")
        rows.append(f"<tr><td>{html.escape(name)}</td><td><code>{manifest.identity}</code></td>"
                    f"<td><code>{manifest.digest}</code></td>"
                    f"<td>{html.escape(str(manifest.timings.get('finished', '')))}</td>"
                    f"<td>{'' if wall is None else f'{float(wall):.1f}'}</td></tr>")
    table = ("<table class='table table-sm'><tr><th>stage</th><th>identity</th><th>digest"
             "</th><th>finished (UTC)</th><th>wall time (s)</th></tr>" + "".join(rows)
             + "</table>")
    version_text = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    config = yaml.safe_dump(ctx.config.model_dump(mode="json"), sort_keys=False)
    report.add_html(
        f"<p>Package versions: {html.escape(version_text)}.</p>{table}"
        "<p>Identity: hash of the settings that decide a stage's results; digest: hash of "
        "its results (see the manifests in each stage folder).</p>"
        f"<pre>{html.escape(config)}</pre>",
        title="Configuration, versions and stages", section=METADATA)

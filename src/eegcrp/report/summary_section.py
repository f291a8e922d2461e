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

__all__ = ["add_metadata_section", "add_summary_section", "dominant_bands"]

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


def _item(text: str) -> str:
    return f"<li>{text}</li>"


def add_summary_section(report: mne.Report, ctx: Any) -> None:
    """The summary a PI reads first (see the module docstring)."""
    items = []
    prepared = ctx.manifests["prepare"].extra["dataset"]
    items.append(_item(
        f"Data: <b>{html.escape(prepared['name'])}</b> ({prepared['task'].replace('_', ' ')}), "
        f"{len(prepared['subjects'])} subjects, classes "
        f"{html.escape(', '.join(prepared['classes']))}."))
    if "train" in ctx.manifests:
        from .training_section import classification_summary

        cs = classification_summary(ctx)
        if cs is not None:
            label = cs["score"].replace("_", " ")
            items.append(_item(
                f"Decoding (leave-one-subject-out): {label} <b>{cs['mean']:.3f}</b> "
                f"(sd {cs['sd']:.3f} over subjects x repetitions), chance {cs['chance']:.2f}; "
                f"{cs['above']} of {cs['n_subjects']} held-out subjects above their "
                "permutation threshold (p &lt; 0.05)."))
    if "explain" in ctx.manifests:
        from ..store import open_relevance

        run = open_relevance(ctx.folder("explain"))
        if run.folds:
            parts = [f"{html.escape(c)}: {html.escape(d['band'])} "
                     f"({100 * d['share']:.0f} % of positive relevance), strongest at "
                     f"{html.escape(', '.join(d['channels']))}"
                     for c, d in dominant_bands(run).items()]
            items.append(_item("Where the evidence lies (all filters): " + "; ".join(parts)
                               + "."))
    for name, key in (("sources", "summary"), ("regions", "summary")):
        manifest = ctx.manifests.get(name)
        text = (manifest.extra.get(key) if manifest is not None else None)
        if isinstance(text, str) and text:
            items.append(_item(html.escape(text)))
    if "evaluate" in ctx.manifests:
        from .quality_section import faithfulness_verdict, load_quality

        aopc = load_quality(ctx)["aopc"]
        if not aopc.empty:
            verdict = faithfulness_verdict(aopc, f"lrp:{ctx.config.explain.composite}")
            items.append(_item(f"Faithfulness: {html.escape(verdict)}."))
    report.add_html("<ul>" + "".join(items) + "</ul>", title="At a glance", section=SUMMARY)


def add_metadata_section(report: mne.Report, ctx: Any) -> None:
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

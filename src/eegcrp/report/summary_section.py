"""The report's first section (what a PI reads first) and its last (how it was made).

The summary states, from the verified results present (:mod:`.headlines` words each line):
the decoding score with its interval, chance and the test across held-out subjects, and how
many subjects beat their permutation threshold (single models, or the repetition ensembles
with ``decoding.headline: ensemble``); EEGNet against its ensembles and the same-fold
baselines; where and in which band the relevance of each class lies (the explain store, all
filters pooled, each subject's ensemble); the brain share of the relevance,
or why ICLabel's labels are not interpretable; the region x band cells above expectation and
whether the montage covers enough regions; the faithfulness test's verdict per domain; and
the likely confounds. When decoding is not above chance across subjects the summary leads
with that and labels every line about relevance, concepts, sources and regions as describing
a model that did not learn the task. Each line names its section and links its CSV files.
The run metadata list the configuration, the package versions and every stage manifest's
identity, digest and wall time.
"""

from __future__ import annotations

import html

import mne
import yaml

from ..results import load_decoding, load_evaluation
from ..store import open_relevance
from .context import ReportContext
from .controls_section import controls_headline
from .headlines import (
    Headline,
    comparison_headline,
    decoding_headline,
    dominant_bands,
    faithfulness_headline,
    likely_confounds,
    regions_headline,
    relevance_headline,
    sources_headline,
)
from .training_section import classification_summary

__all__ = ["add_metadata_section", "add_summary_section", "summary_headlines"]

SUMMARY = "Summary"
METADATA = "Run metadata"


def _item(h: Headline, gate: str | None) -> str:
    links = ", ".join(f"<a href='{html.escape(f)}'>{html.escape(f)}</a>" for f in h.sources)
    where = f" <small>(section {html.escape(h.section)}; from {links})</small>" if h.sources \
        else ""
    tag = f"<b>[{html.escape(gate)}]</b> " if gate else ""
    return f"<li>{tag}{h.text}{where}</li>"


def summary_headlines(ctx: ReportContext) -> tuple[list[tuple[Headline, bool]], str | None]:
    """The summary's lines in order, each with whether the decoding gate applies to it, and
    the gate's label (None when decoding is above chance across subjects)."""
    lines: list[tuple[Headline, bool]] = []
    prepared = ctx.manifests["prepare"].extra["dataset"]
    lines.append((Headline(
        f"Data: <b>{html.escape(prepared['name'])}</b> ({prepared['task'].replace('_', ' ')}), "
        f"{len(prepared['subjects'])} subjects, classes "
        f"{html.escape(', '.join(prepared['classes']))}.", ["prepare/summary.csv"], "Data"),
        False))
    gate = None
    cs = classification_summary(ctx) if "train" in ctx.manifests else None
    decoded = (load_decoding(ctx.folder("decoding")) if "decoding" in ctx.manifests
               else None)
    which = ctx.config.decoding.headline
    if cs is not None:
        alpha = ctx.config.evaluate.alpha
        ensemble = (decoded.table(cs["score"])["eegnet_ensemble"]
                    if decoded is not None and which == "ensemble" else None)
        decoding, ev = decoding_headline(cs, alpha=alpha, ensemble=ensemble)
        if ev.learned is None:
            gate = "decoding not testable"
        elif not ev.learned:
            gate = "model did not learn the task"
        lines.insert(0 if gate == "model did not learn the task" else 1, (decoding, False))
        versus = comparison_headline(decoded.summary, which) if decoded is not None else None
        if versus is not None:
            lines.insert(lines.index((decoding, False)) + 1, (versus, False))
    dominant = None
    if "explain" in ctx.manifests:
        run = open_relevance(ctx.folder("explain"))
        if run.folds:
            dominant = dominant_bands(run)
            lines.append((relevance_headline(dominant), True))
    sources = ctx.manifests.get("sources")
    for h in (sources_headline(sources), regions_headline(ctx.manifests.get("regions"))):
        if h is not None:
            lines.append((h, True))
    for name in ("sources", "regions"):  # say so rather than fall silent
        skipped = (ctx.manifests.get(name).extra.get("skipped")
                   if ctx.manifests.get(name) is not None else None)
        if skipped:
            lines.append((Headline(f"{name.capitalize()}: not run ({html.escape(skipped)})."),
                          False))
    if "evaluate" in ctx.manifests:
        tables = load_evaluation(ctx.folder("evaluate"))
        ec = ctx.config.evaluate
        h = faithfulness_headline(tables["faithfulness"], tables["aopc"],
                                  f"lrp:{ctx.config.explain.composite}", alpha=ec.alpha,
                                  min_dz=ec.min_effect)
        if h is not None and gate == "model did not learn the task":
            # relevance can follow a chance-level model's score faithfully: that says
            # nothing about the task, so no verdict is stated here
            h = Headline("Faithfulness: not assessed here, since the model did not learn the "
                         "task (an explanation can track a chance-level score faithfully; "
                         "the per-domain tests are in the section).", h.sources, h.section)
        if h is not None:
            lines.append((h, True))
    controls = controls_headline(ctx.manifests.get("controls"))
    if controls:
        lines.append((Headline(controls, ["controls/summary.csv", "controls/subjects.csv"],
                               "Confound controls"), False))
    suspects = likely_confounds(sources, dominant)
    if suspects:
        ran = controls is not None
        lines.append((Headline(
            "Possible confounds: " + "; ".join(suspects) + "." + (
                "" if ran else " Retrain under the controls to see how much score they "
                "carry: <code>eegcrp controls CONFIG --controls</code>."),
            ["sources/shares.csv"] if sources is not None else [], "Relevance"), True))
    return lines, gate


def add_summary_section(report: mne.Report, ctx: ReportContext) -> None:
    """The summary a PI reads first (see the module docstring)."""
    lines, gate = summary_headlines(ctx)
    items = [_item(h, gate if gated else None) for h, gated in lines]
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

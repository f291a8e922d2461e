"""Report section of the concepts stage: concepts shared across subjects, per cluster.

Reads the verified concepts results (:func:`eegcrp.concepts.load_concepts`) and, for the
concept atlas only, the reference windows of the representative filters from the explain
fold files, lazily. Every cross-fold figure is drawn per concept cluster, never per filter
index; the figures themselves are in :mod:`.concepts_figures`.
"""

from __future__ import annotations

import html
from typing import Any

import mne
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..concepts import load_concepts
from ..store import FilterKey, open_relevance
from .concepts_figures import (
    agreement_figure,
    atlas_figure,
    metrics_figure,
    models_figure,
    scatter_figure,
    spectra_figure,
    topography_figure,
)
from .context import ReportContext
from .tables import html_table
from .topography import scalp_info

__all__ = ["SECTION", "add_concepts_section", "atlas_clusters"]

SECTION = "Concepts shared across subjects"
def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    return html_table(frame)


def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return format(value, spec)


def atlas_clusters(clusters: pd.DataFrame, cls: str, n: int) -> pd.DataFrame:
    """The atlas' clusters of a class: the ``n`` largest stable pooled clusters, or the
    ``n`` largest when stability is not assessable (one repetition)."""
    sub = clusters[(clusters["class"] == cls) & (clusters["scope"] == "pooled")
                   & (clusters["label"] >= 0)]
    if sub["stable"].notna().any():
        sub = sub[sub["stable"].fillna(False).astype(bool)]
    return sub.sort_values("n_filters", ascending=False, kind="stable").head(n)


def _settings_html(c: Any, cfg: Any, classes: list[str]) -> str:
    extra = c.manifest.get("extra", {})
    summary = extra.get("summary", {})
    reps = int(summary.get("repetitions", 1))
    stab = c.stability
    pooled = stab[stab["scope"] == "pooled"]
    per_class = []
    for cls in classes:
        s = summary.get("classes", {}).get(cls, {})
        row = pooled[pooled["class"] == cls]
        n_nb = row["n_neighbors"].iloc[0] if len(row) else None
        stable = ("stability not assessable" if s.get("stable") is None
                  else f"{s['stable']} stable")
        per_class.append(
            f"<li>class <b>{_esc(cls)}</b>: {s.get('filters', '?')} filters "
            f"({s.get('excluded', 0)} excluded: no selected windows or an undefined "
            f"descriptor), {s.get('clusters', '?')} clusters, "
            f"{stable}, {s.get('shared', 0)} shared; min_cluster_size {s.get('min_cluster_size')}"
            + ("" if n_nb is None or pd.isna(n_nb) else f", n_neighbors {int(n_nb)}")
            + "</li>")
    embed = ("UMAP to 2-D (metric " f"{_esc(cfg.metric)}, n_neighbors {_esc(cfg.n_neighbors)}, "
             f"min_dist {cfg.min_dist:g}, seed {cfg.seed})" if cfg.embedding == "umap"
             else "no embedding (the descriptors themselves)")
    method = ("HDBSCAN" if cfg.clustering == "hdbscan"
              else f"DBSCAN (eps {cfg.eps:g}, min_samples {cfg.min_samples or 10})")
    stable_rule = (
        f"A pooled cluster is <b>stable</b> when a cluster of at least "
        f"{100 * cfg.stable_recurrence:.0f} % of the {reps} repetitions matches it (Hungarian "
        "assignment on centroid distance in descriptor space; a match when the centroid lies "
        f"within the {100 * cfg.match_quantile:.0f}th percentile of the pooled cluster's "
        "member distances to its centroid)." if reps >= 2 else
        "With one repetition stability is <b>not assessable</b>: no cluster is called stable."
    )
    return (
        f"<p>Every filter of every fold model ({summary.get('models', '?')} models, {reps} "
        f"repetition(s), layer <b>{_esc(extra.get('layer', ''))}</b>) is described by "
        f"<b>{_esc(' + '.join(cfg.descriptor))}</b> (normalised so that filters of "
        f"independently trained models compare), embedded by {embed} and clustered by "
        f"{method}, per class, per repetition and pooled over repetitions. Filter k of two "
        "fold models is not the same filter: every figure below is per cluster. NC = noise "
        "(no cluster), all = every filter. A cluster is <b>shared</b> when filters of at "
        f"least {100 * cfg.shared_fraction:.0f} % of the models contribute, else "
        f"subject-specific. {stable_rule}</p><ul>{''.join(per_class)}</ul>"
    )


def _stability_html(c: Any, classes: list[str]) -> str:
    parts = []
    for cls in classes:
        pooled = c.pooled(cls)
        # stable concepts first, then those not assessable, the unstable ones last
        rank = pooled["stable"].astype(object).map({True: 0, False: 2}).fillna(1)
        pooled = pooled.assign(_rank=rank.to_numpy()).sort_values(
            ["_rank", "n_filters"], ascending=[True, False], kind="stable")
        rows = pd.DataFrame({
            "cluster": pooled["cluster"], "filters": pooled["n_filters"],
            "models": pooled["n_models"], "kind": pooled["kind"],
            "recurrence": [_fmt(v, ".0%") for v in pooled["recurrence"]],
            "verdict": [v.replace("not stable", "UNSTABLE") if isinstance(v, str) else v
                        for v in pooled["stability"]],
        })
        reps = c.stability[(c.stability["class"] == cls) & (c.stability["scope"] != "pooled")]
        rep_rows = pd.DataFrame({
            "repetition": reps["repetition"], "filters": reps["n_filters"],
            "clusters": reps["n_clusters"], "noise": reps["n_noise"],
            "matched to pooled": [_fmt(v, ".0f") for v in reps["n_matched"]],
            "ARI vs pooled": [_fmt(v) for v in reps["ari_vs_pooled"]],
        })
        parts.append(f"<h4>class {_esc(cls)}</h4>{_table(rows)}{_table(rep_rows)}")
    return ("<p>Pooled clusters with their recurrence over repetitions and verdict, stable "
            "ones first and UNSTABLE ones last; per "
            "repetition its own clustering, how many of its clusters match a pooled cluster, "
            "and the adjusted Rand index between it and the pooled clustering restricted to "
            "the same filters (1 = the same partition; noise counts as one group; n/a with one "
            "repetition).</p>" + "".join(parts))


def _bands(arrays: Any) -> dict[str, tuple[float, float]]:
    return {str(b): (float(lo), float(hi)) for b, lo, hi in
            zip(arrays["band"].values, arrays["band_low"].values, arrays["band_high"].values,
                strict=True)}


def _atlas_entries(run: Any, row: pd.Series, cls: str, n_windows: int) -> list[dict[str, Any]]:
    entries = []
    for text in [k for k in str(row["representatives"]).split(";") if k]:
        key = FilterKey.parse(text)
        fold = run.fold((key.repetition, key.subject))
        heat = fold.heatmaps(cls, key.filter).values[:n_windows]
        act = fold.pair_array("activation_time", cls, key.filter).values[:n_windows]
        rel = fold.pair_array("relevance_time", cls, key.filter).values[:n_windows]
        # orient the activation as the descriptor does (its sign is not identifiable)
        am = fold.summary("activation_mean").sel({"class": cls}).values[key.filter]
        rm = fold.summary("relevance_mean").sel({"class": cls}).values[key.filter]
        sign = np.sign(np.sum((am - am.mean()) * rm)) or 1.0
        entries.append({"key": text, "heatmaps": heat, "activation": sign * act,
                        "relevance": rel, "layer_times": fold.coords()["layer_time"]})
    return entries


def add_concepts_section(report: mne.Report, ctx: ReportContext) -> None:
    """Add the concepts section from the verified ``concepts`` results."""
    c = load_concepts(ctx.folder("concepts"))
    run = open_relevance(ctx.folder("explain"))
    cfg = ctx.config.concepts
    classes = list(dict.fromkeys(c.filters["class"]))
    bands = _bands(c.arrays)
    sfreq = float(run.meta.get("sfreq", 128.0))
    report.add_html(_settings_html(c, cfg, classes), title="Concept clustering settings",
                    section=SECTION)
    figures: list[tuple[str, Figure, str]] = []
    if cfg.embedding == "umap":
        figures.append(("Embedding of every filter", scatter_figure(c.filters, classes),
                        "Each dot is one filter of one fold model; near dots have similar "
                        "descriptors. Colours: clusters (legend: filters per cluster), grey: "
                        "noise. UMAP axes have no units."))
    figures += [
        ("Cluster metrics", metrics_figure(c.clusters, classes),
         "Per pooled cluster: filters, contributing models, mean relevance per selected "
         "window (sign: for/against the class) and coherence (higher = tighter); * = stable."),
        ("Filters per model", models_figure(c.filters, classes),
         "How many filters of each held-out subject's models (all repetitions) fall in each "
         "cluster: a shared concept has a slice in most bars."),
        ("Relevance spectra per cluster", spectra_figure(c.clusters, c.arrays, classes, bands,
                                                       cfg.report_clusters),
         "Where in frequency each cluster's relevance lies; the band around the mean shows how "
         "much its filters differ."),
    ]
    for title, fig, caption in figures:
        report.add_figure(fig, title=title, caption=caption, section=SECTION)
    _topographies(report, c, run, cfg, classes, bands, sfreq)
    report.add_html(_stability_html(c, classes), title="Cluster stability", section=SECTION)
    reps = int(c.manifest.get("extra", {}).get("summary", {}).get("repetitions", 1))
    if reps >= 2 and len(c.agreement):
        fig = agreement_figure(c.agreement, classes)
        report.add_figure(fig, title="Model agreement", section=SECTION,
                          caption="Correlation of the models' spectral relevance: models of "
                          "the same held-out subject (retrained) vs of different subjects; "
                          "same >> different means the explanation depends on the subject.")
    else:
        report.add_html("<p>Model agreement (same vs different held-out subject) needs at "
                        "least two repetitions (training.repetitions >= 2).</p>",
                        title="Model agreement", section=SECTION)
    _atlas(report, c, run, cfg, classes, sfreq)


def _topographies(report: mne.Report, c: Any, run: Any, cfg: Any, classes: list[str],
                  bands: dict[str, tuple[float, float]], sfreq: float) -> None:
    topo = scalp_info(run.channels, sfreq)
    ch_names = [str(n) for n in c.arrays["channel"].values]
    kind = "scalp maps" if topo is not None else "per-channel bars (bipolar channels or no " \
        "scalp positions)"
    for cls in classes:
        sub = c.clusters[(c.clusters["class"] == cls) & (c.clusters["scope"] == "pooled")
                         & (c.clusters["n_filters"] > 0)]
        real = sub[sub["label"] >= 0].sort_values("n_filters", ascending=False,
                                                   kind="stable").head(cfg.report_clusters)
        for _, row in pd.concat([real, sub[sub["label"] < 0]]).iterrows():
            cid = row["cluster_id"]
            power = c.arrays["power_band"].sel(cluster=cid).values
            rel = c.arrays["relevance_band"].sel(cluster=cid).values
            verdict = row["stability"] or row["kind"]
            title = (f"class {cls}, cluster {row['cluster']}: {int(row['n_filters'])} filters "
                     f"of {int(row['n_models'])} models ({row['kind']}; {verdict})")
            try:
                fig = topography_figure(power, rel, topo, ch_names, bands, cfg.power_display,
                                        title)
            except (ValueError, RuntimeError) as exc:  # e.g. collinear sensor positions
                report.add_html(f"<p>Topography skipped: {_esc(exc)}</p>",
                                title=f"Topographies {cls} {row['cluster']}", section=SECTION)
                continue
            report.add_figure(
                fig, title=f"Topographies: {cls}, cluster {row['cluster']}", section=SECTION,
                caption=f"Top row: input power of the filters' selected windows; bottom row: "
                f"their relevance (red: for, blue: against the class), mean over the "
                f"cluster's filters, per band ({kind}; colour limits shared within a row).")


def _atlas(report: mne.Report, c: Any, run: Any, cfg: Any, classes: list[str],
           sfreq: float) -> None:
    ch_names = [str(n) for n in c.arrays["channel"].values]
    shown = 0
    for cls in classes:
        for _, row in atlas_clusters(c.clusters, cls, cfg.atlas_clusters).iterrows():
            entries = _atlas_entries(run, row, cls, cfg.atlas_windows)
            if not entries:
                continue
            fig = atlas_figure(entries, sfreq, ch_names,
                               f"Concept atlas: class {cls}, cluster {row['cluster']} "
                               f"({row['stability'] or row['kind']})")
            report.add_figure(
                fig, title=f"Concept atlas: {cls}, cluster {row['cluster']}", section=SECTION,
                caption="Rows: the filters nearest to the cluster's centroid; columns: their "
                "highest-ranked reference windows (conditional input heatmaps, red: for the "
                "class) and, last, the windows' activation and relevance time courses at the "
                "layer (each scaled to its maximum; activation oriented as in the descriptor).")
            shown += 1
    if not shown:
        report.add_html("<p>No concept atlas: no cluster is stable.</p>",
                        title="Concept atlas", section=SECTION)

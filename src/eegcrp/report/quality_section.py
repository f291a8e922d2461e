"""Report section of the ``evaluate`` stage: is the explanation worth reading?

Reads the stage's CSVs (listed in its verified manifest): faithfulness (AOPC per method and
domain, the faithfulness test of :func:`eegcrp.evidence.faithfulness_evidence`, perturbation
curves), conservation per method, randomisation checks and, for simulated data,
ground-truth recovery.
"""

from __future__ import annotations

from typing import Any

import mne
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..evidence import faithfulness_table
from ..results import load_evaluation
from .context import ReportContext
from .figures import subplots
from .headlines import faithfulness_headline
from .tables import html_table

__all__ = ["add_quality_section"]

#: Colour-blind-safe palette (Okabe & Ito) for methods.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
SECTION = "Explanation quality"


def _aopc_figure(aopc: pd.DataFrame) -> Figure:
    domains = list(dict.fromkeys(aopc["domain"]))
    methods = list(dict.fromkeys(aopc["method"]))
    fig, axes = subplots(1, len(domains), figsize=(4.2 * len(domains), 3.6),
                         layout="constrained", squeeze=False)
    width = 0.8 / 3
    for ax, domain in zip(axes[0], domains, strict=True):
        rows = aopc[aopc["domain"] == domain]
        x = np.arange(len(methods))
        for k, (col, label, hatch) in enumerate((("aopc_morf", "most relevant first", ""),
                                                 ("aopc_random", "random order", "//"),
                                                 ("aopc_lerf", "least relevant first", ".."))):
            stats = rows.groupby("method")[col].agg(["mean", "std"]).reindex(methods)
            ax.bar(x + (k - 1) * width, stats["mean"], width, yerr=stats["std"].fillna(0),
                   color=PALETTE[k], hatch=hatch, edgecolor="0.2", linewidth=0.4, label=label,
                   error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(x, [m.removeprefix("lrp:") for m in methods], rotation=30, ha="right",
                      fontsize=8)
        ax.set_title(f"removing {domain}", fontsize=10)
        ax.set_ylabel("AOPC (decision score, logit units)")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(frameon=False, fontsize=7)
    fig.suptitle("Faithfulness: mean drop of the decision score as units are removed "
                 "(bars: mean over folds, error bars: SD)", fontsize=10)
    return fig


def _curves_figure(curves: pd.DataFrame) -> Figure:
    domains = list(dict.fromkeys(curves["domain"]))
    methods = list(dict.fromkeys(curves["method"]))
    fig, axes = subplots(1, len(domains), figsize=(4.2 * len(domains), 3.4),
                         layout="constrained", squeeze=False)
    styles = {"morf": "-", "lerf": "--", "random": ":"}
    for ax, domain in zip(axes[0], domains, strict=True):
        rows = curves[curves["domain"] == domain]
        for m, method in enumerate(methods):
            for order, style in styles.items():
                sel = rows[(rows["method"] == method) & (rows["order"] == order)]
                mean = sel.groupby("fraction")["score"].mean()
                ax.plot(mean.index, mean.values, style, color=PALETTE[m % len(PALETTE)],
                        lw=1.2, label=method.removeprefix("lrp:") if order == "morf" else None)
        ax.set(xlabel=f"fraction of {domain} removed", ylabel="decision score (logit units)",
               title=f"{domain}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(frameon=False, fontsize=7, title="solid: most relevant first; dashed: "
                      "least; dotted: random", title_fontsize=6)
    fig.suptitle("Perturbation curves (mean over folds and windows)", fontsize=10)
    return fig


def _randomisation_figure(rand: pd.DataFrame) -> Figure | None:
    cascade = rand[rand["check"] == "cascade"]
    if cascade.empty:
        return None
    fig, ax = subplots(figsize=(6, 3.4), layout="constrained")
    steps = list(dict.fromkeys(cascade["step"]))
    for k, col in enumerate(("heatmap_spearman", "topography_spearman")):
        mean = cascade.groupby("step", sort=False)[col].mean().reindex(steps)
        ax.plot(range(len(steps)), mean.values, "o-", color=PALETTE[k],
                label=col.replace("_spearman", "").replace("_", " "))
    shuffled = rand[rand["check"] == "shuffled_labels"]
    if not shuffled.empty:
        ax.axhline(float(shuffled["heatmap_spearman"].mean()), color=PALETTE[2], ls="--",
                   label="heatmap, model on shuffled labels")
    ax.set_xticks(range(len(steps)), steps, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="Spearman correlation with the trained model", ylim=(-0.2, 1.05),
           xlabel="layers re-drawn (cumulative, from the output down)")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.legend(frameon=False, fontsize=7)
    ax.grid(alpha=0.3)
    fig.suptitle("Randomisation sanity checks", fontsize=10)
    return fig


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _ablation_figure(ablation: pd.DataFrame) -> Figure:
    fig, ax = subplots(figsize=(5.2, 4.0), layout="constrained")
    classes = list(dict.fromkeys(ablation["class"]))
    for k, cls in enumerate(classes):
        rows = ablation[ablation["class"] == cls]
        ax.scatter(100 * rows["relevance_share"], 100 * rows["relative_drop"], s=18,
                   color=PALETTE[k % len(PALETTE)], alpha=0.8, label=cls)
    r = ablation[["relevance_share", "relative_drop"]].corr().iloc[0, 1]
    lim = 100 * float(np.nanmax(np.abs(ablation[["relevance_share", "relative_drop"]].values)))
    ax.plot([-lim, lim], [-lim, lim], color="0.5", lw=0.8, ls="--", label="drop = share")
    ax.axhline(0, color="0.3", lw=0.6)
    ax.axvline(0, color="0.3", lw=0.6)
    ax.set(xlabel="cluster's share of the filters' relevance (%)",
           ylabel="score drop when its filters are removed (% of |score|)",
           title=f"Concept ablation (r = {r:.2f}; points: fold x class x cluster)")
    ax.legend(frameon=False, fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _table(frame: pd.DataFrame) -> str:
    return html_table(frame, _cell)


def add_quality_section(report: mne.Report, ctx: ReportContext) -> None:
    """Add the explanation-quality section from the verified ``evaluate`` results."""
    tables = load_evaluation(ctx.folder("evaluate"))
    aopc, curves, cons = tables["aopc"], tables["curves"], tables["conservation"]
    main = f"lrp:{ctx.config.explain.composite}"
    ec = ctx.config.evaluate
    if not aopc.empty:
        tests = tables["faithfulness"]
        if tests.empty and "subject" in aopc.columns:
            tests = pd.DataFrame(faithfulness_table(aopc, list(dict.fromkeys(aopc["method"])),
                                                    alpha=ec.alpha, min_dz=ec.min_effect))
        headline = faithfulness_headline(tests, aopc, main, alpha=ec.alpha,
                                         min_dz=ec.min_effect)
        columns = ["method", "domain", "n_subjects", "aopc_morf", "aopc_random", "difference",
                   "ci_low", "ci_high", "d_z", "p", "verdict"]
        report.add_html(
            f"<p>{headline.text if headline else 'No faithfulness test for ' + main}</p>"
            "<p>Units (channels, bands, time segments) are removed in order of their "
            "relevance; a faithful explanation lowers the decision score faster than random "
            "removal. Per held-out subject the AOPC of 'most relevant first' minus that of "
            "'random order' (logit units) is tested over subjects (one-sided paired t-test); "
            f"'faithful' needs p &lt; {ec.alpha:g} and d_z &ge; {ec.min_effect:g}, a "
            "significant smaller effect is 'weakly faithful', and otherwise the method is "
            "'indistinguishable from random'.</p>"
            + (_table(tests[[c for c in columns if c in tests.columns]]) if len(tests) else ""),
            title="Faithfulness summary", section=SECTION)
        for title, fig, guide in (
            ("AOPC per method and domain", _aopc_figure(aopc),
             "Read: the solid bar should clearly exceed the hatched random bar; a method whose "
             "bars tie with random is not telling what the model uses."),
            ("Perturbation curves", _curves_figure(curves),
             "Read: solid lines should fall below dotted (random) ones at once; dashed "
             "(least relevant first) lines should stay flat longest."),
        ):
            report.add_figure(fig, title=title, caption=guide, section=SECTION)
    if not cons.empty:
        summary = cons.groupby("method")[["median", "q05", "q95", "flagged", "n_windows"]] \
            .agg({"median": "median", "q05": "min", "q95": "max", "flagged": "sum",
                  "n_windows": "sum"}).reset_index()
        tol = float(cons["tolerance"].iloc[0])
        report.add_html(
            "<p>Conservation: the sum of each heatmap divided by the score it decomposes "
            f"(ideal 1). Windows off by more than {100 * tol:g} % are flagged. Gradient "
            "baselines do not conserve by design.</p>" + _table(summary),
            title="Conservation per method", section=SECTION)
    rand = tables["randomisation"]
    if not rand.empty:
        fig = _randomisation_figure(rand)
        if fig is not None:
            report.add_figure(
                fig, title="Randomisation", section=SECTION,
                caption="Read: similarity should fall as layers are re-drawn and stay low for "
                        "a model trained on shuffled labels; similarity that stays high means "
                        "the heatmap reflects the input more than the model.")
    ablation = tables["concept_ablation"]
    if len(ablation) > 2:
        fig = _ablation_figure(ablation)
        report.add_figure(
            fig, title="Concept-level faithfulness", section=SECTION,
            caption="Read: points near the dashed line mean a cluster's relevance predicts "
                    "how much the decision needs its filters; a cloud without trend means "
                    "the clusters' relevance does not tell what the model relies on.")
    cgt = tables["cluster_ground_truth"]
    if not cgt.empty:
        report.add_html(
            "<p>Concept clusters against the ground truth: share of each pooled cluster's "
            "positive relevance in the planted bands that lies on the planted channels, and "
            "the share expected by channel count.</p>" + _table(cgt),
            title="Ground truth per concept cluster", section=SECTION)
    truth = tables["ground_truth"]
    if not truth.empty:
        cols = [c for c in ("channel_share", "channel_chance", "channel_precision_at_k",
                            "channel_auc", "band_share", "band_chance", "bin_auc",
                            "time_share", "time_chance") if c in truth]
        report.add_html(
            "<p>Ground-truth recovery (simulated data): relevance share on the planted "
            "channels, band and time window next to the share expected by chance, precision "
            "of the top-k channels and ROC AUC of relevance as a detector of the planted "
            "channels and bins. Mean over folds.</p>"
            + _table(truth.groupby(["method", "class"])[cols].mean().reset_index()),
            title="Ground-truth recovery", section=SECTION)

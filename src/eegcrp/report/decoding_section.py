"""Report part for the ``decoding`` stage: EEGNet beside its repetition ensemble and the
same-fold baselines (in the Classification section).

Reads the verified ``decoding`` results only: a forest plot of each model's mean over
held-out subjects with its 95 % t interval against chance, the per-subject table and the
paired comparisons (:func:`eegcrp.comparison.paired_test`).
"""

from __future__ import annotations

import html

import mne
import pandas as pd

from ..results import load_decoding
from .context import ReportContext
from .figures import forest_plot
from .headlines import MODEL_NAMES

__all__ = ["add_decoding_section"]

SECTION = "Classification"


def _table(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    head = "".join(f"<th>{html.escape(MODEL_NAMES.get(c, c))}</th>" for c in cols)
    body = "".join(
        f"<tr><td>{html.escape(str(s))}</td>"
        + "".join(f"<td>{row[c]:.3f}</td>" for c in cols) + "</tr>"
        for s, row in table.iterrows())
    mean = "".join(f"<td><b>{table[c].mean():.3f}</b></td>" for c in cols)
    return (f"<table class='table table-sm'><tr><th>held-out subject</th>{head}</tr>{body}"
            f"<tr><td><b>mean</b></td>{mean}</tr></table>")


def _comparisons(summary: dict) -> str:
    rows = "".join(
        f"<tr><td>EEGNet vs {html.escape(MODEL_NAMES.get(m, m))}</td>"
        f"<td>{t['difference']:+.3f}</td><td>{t['ci'][0]:+.3f} to {t['ci'][1]:+.3f}</td>"
        f"<td>{t['smd']:+.2f}</td><td>{t['p_eegnet_better']:.3g}</td>"
        f"<td>{html.escape(t['test'])}</td></tr>"
        for m, t in summary.get("versus_eegnet", {}).items())
    return ("<table class='table table-sm'><tr><th>comparison</th><th>mean difference</th>"
            "<th>95 % CI</th><th>SMD</th><th>p (EEGNet better)</th><th>test</th></tr>"
            f"{rows}</table>")


def add_decoding_section(report: mne.Report, ctx: ReportContext) -> None:
    """Add EEGNet, its repetition ensemble and the baselines, side by side."""
    results = load_decoding(ctx.folder("decoding"))
    summary = results.summary
    score = summary.get("score", "balanced_accuracy")
    table = results.table(score)
    order = [m for m in ("eegnet", "eegnet_ensemble", *ctx.config.decoding.baselines)
             if m in table.columns]
    table = table[order]
    models = summary["models"]
    chance = 1.0 / len(ctx.manifests["decoding"].extra["classes"])
    label = score.replace("_", " ")
    fig = forest_plot([(MODEL_NAMES.get(m, m), models[m]["mean"], *models[m]["ci"])
                       for m in order], chance=chance, xlabel=label,
                      title=f"Mean {label} over {len(table)} held-out subjects, 95 % CI",
                      colors=["tab:blue", "tab:purple"] + ["tab:gray"] * (len(order) - 2))
    reps = ctx.manifests["decoding"].extra.get("repetitions", [])
    report.add_figure(fig, title="EEGNet, its repetition ensemble and the baselines",
                      caption=(f"Same held-out subjects and windows for every model. EEGNet: "
                               f"each subject's {len(reps)} single models, their score "
                               "averaged; ensemble: their probabilities averaged; baselines "
                               "trained on every other subject."), section=SECTION)
    report.add_html(
        "<p>Per held-out subject (" + html.escape(label) + "). Paired comparisons as MOABB "
        "reports them: one-sided sign-flip permutation test of the summed differences "
        "(exact up to 13 subjects), Wilcoxon signed-rank from 20; SMD = mean / sd of the "
        "paired differences.</p>" + _comparisons(summary) + _table(table),
        title="Decoders on the same folds", section=SECTION)

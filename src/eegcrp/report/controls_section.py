"""Report section of the ``controls`` stage: how much score survives each control."""

from __future__ import annotations

import html

import mne
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..results import open_stage
from .context import ReportContext
from .figures import subplots

__all__ = ["add_controls_section", "controls_headline"]

SECTION = "Confound controls"


def _num(value: object, fmt: str) -> str:
    """``value`` formatted, or "n/a" when missing (NaN is written as null in a manifest)."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return format(float(value), fmt)


def controls_headline(manifest: object, config_hint: str = "CONFIG") -> str | None:
    """One line per control that ran: the change with its interval and the verdict; the
    likely confounds first, each with the options that rerun the study without it."""
    extra = getattr(manifest, "extra", None) or {}
    recs = [r for r in extra.get("controls", []) if r.get("verdict") != "not run"]
    skipped = [r for r in extra.get("controls", []) if r.get("verdict") == "not run"]
    if not recs:
        return None
    recs = sorted(recs, key=lambda r: (not r.get("likely_confound"),
                                       not r.get("possible_confound")))
    parts = []
    for r in recs:
        share = r.get("share_removed")
        removed = (f", {100 * share:.0f} % of the above-chance score removed"
                   if isinstance(share, (int, float)) and share == share and share > 0 else "")
        text = (f"{html.escape(r['control'])} ({html.escape(r['description'])}): "
                f"{_num(r['study_score'], '.3f')} &rarr; {_num(r['control_score'], '.3f')} "
                f"(change {_num(r['change'], '+.3f')}, 95 % CI {_num(r['ci_low'], '+.3f')} to "
                f"{_num(r['ci_high'], '+.3f')}, paired t-test p = {_num(r['p'], '.3g')}"
                f"{removed}), <b>{html.escape(r['verdict'])}</b>")
        if r.get("likely_confound") or r.get("possible_confound"):
            kind = "likely" if r.get("likely_confound") else "possible"
            text += (f": {kind} confound in what this control removes. Rerun the study "
                     f"without it: <code>eegcrp run {html.escape(config_hint)} "
                     f"{html.escape(r['options'])} --out OUT</code>")
        parts.append(text)
    parts += [f"{html.escape(r['control'])} not run ({html.escape(r['reason'])})"
              for r in skipped]
    n = max(int(r["n_subjects"]) for r in recs)
    score = str(extra.get("score", "score")).replace("_", " ")
    return (f"Controls (the study retrained under each, {score}"
            f" paired over {n} held-out subjects): " + "; ".join(parts) + ".")


def _figure(subjects: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    names = list(summary.loc[summary["verdict"] != "not run", "control"])
    fig, ax = subplots(1, 1, figsize=(1.6 + 1.4 * len(names), 3.6), layout="constrained")
    for k, name in enumerate(names):
        part = subjects[subjects["control"] == name]
        for _, row in part.iterrows():
            ax.plot([k - 0.2, k + 0.2], [row["study_score"], row["control_score"]],
                    color="0.5", lw=0.8, marker="o", ms=3)
        ax.plot([k - 0.2, k + 0.2], [part["study_score"].mean(), part["control_score"].mean()],
                color="#D55E00", lw=2.2, marker="o", ms=6)
    ax.set_xticks(np.arange(len(names)), [f"study | {n}" for n in names], fontsize=8)
    ax.set_ylabel("balanced accuracy per held-out subject")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Each line: one held-out subject, study (left) vs control (right); "
                 "orange: mean", fontsize=9)
    return fig


def add_controls_section(report: mne.Report, ctx: ReportContext) -> None:
    """The controls' table and the paired change per subject."""
    manifest = ctx.manifests.get("controls")
    if manifest is None or "skipped" in manifest.extra:
        return
    folder, _ = open_stage(ctx.folder("controls"), "controls",
                           required=("summary.csv", "subjects.csv"))
    summary = pd.read_csv(folder / "summary.csv", keep_default_na=False)
    subjects = pd.read_csv(folder / "subjects.csv", dtype={"subject": str})
    line = controls_headline(manifest) or "No control could be run."
    cols = [c for c in ("control", "description", "study_score", "control_score", "change",
                        "ci_low", "ci_high", "p", "share_removed", "verdict", "reason")
            if c in summary.columns]
    table = summary[cols].to_html(index=False, float_format=lambda v: f"{v:.3f}",
                                  classes="table table-sm", border=0)
    report.add_html(f"<p>{line}</p>{table}", title="Controls", section=SECTION)
    if len(subjects):
        report.add_figure(_figure(subjects, summary), title="Score per subject under each "
                          "control", section=SECTION, image_format="png")

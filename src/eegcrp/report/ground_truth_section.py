"""Report section for simulated data: the planted effects and artefacts (the right answer)."""

from __future__ import annotations

import html

import mne
import numpy as np

from ..data.base import EEGDataset
from .context import ReportContext
from .figures import subplots

__all__ = ["add_ground_truth_section"]


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def add_ground_truth_section(report: mne.Report, ctx: ReportContext) -> None:
    """Tables and topographies of the simulator's ground truth, if the data are simulated."""
    dataset: EEGDataset = ctx.dataset
    gt = dataset.info.get("ground_truth")
    if not gt:
        return
    section = "Ground truth (simulation)"
    rows = [_row(["contrast", "effect", "region", "band (Hz)", "time (s)", "channels",
                  "higher in"], "th")]
    effects = []
    for contrast in gt["contrasts"]:
        for e in contrast["effects"]:
            effects.append(e)
            rows.append(_row([" vs ".join(contrast["classes"]), e["name"], e["region"],
                              "-".join(f"{b:g}" for b in e["band"]),
                              "-".join(f"{t:g}" for t in e["time_window"]),
                              ", ".join(e["channels"]), e["higher_in"]]))
    art = [_row(["artefact", "region", "band (Hz)", "channels", "rate per class (Hz)",
                 "confounded with"], "th")]
    for a in gt["artifacts"]:
        rates = ", ".join(f"{k}: {v:g}" for k, v in a["rate_hz"].items())
        art.append(_row([a["name"], a["region"], "-".join(f"{b:g}" for b in a["band"]),
                         ", ".join(a["channels"]), rates, a["confounded_with"] or "none"]))
    report.add_html(
        f"<p>Paradigm <b>{html.escape(gt['paradigm'].replace('_', ' '))}</b>, effect size "
        f"{gt['effect_size']:g}, SNR {gt['snr']:g}; forward model: "
        f"{html.escape(str(gt['forward_model']))}. An explanation is right when its relevance "
        "falls on these channels, bands and time windows, and not on the artefacts (unless "
        "an artefact is confounded with a class).</p>"
        f"<table class='table table-sm'>{''.join(rows)}</table>"
        f"<table class='table table-sm'>{''.join(art)}</table>",
        title="Planted effects and artefacts", section=section,
    )
    info = dataset[dataset.subjects[0]].info
    index = [gt["ch_names"].index(ch) for ch in dataset.ch_names]
    maps = [(e["name"], np.asarray(e["pattern"])[index]) for e in effects]
    maps += [(a["name"], np.asarray(a["pattern"])[index]) for a in gt["artifacts"]]
    if len(dataset.ch_names) < 3 or not maps:
        return
    fig, axes = subplots(1, len(maps), figsize=(2.1 * len(maps), 2.5), layout="constrained")
    for ax, (name, pattern) in zip(np.atleast_1d(axes), maps, strict=True):
        lim = float(np.abs(pattern).max()) or 1.0
        mne.viz.plot_topomap(pattern, info, axes=ax, show=False, cmap="RdBu_r",
                             vlim=(-lim, lim), contours=0)
        ax.set_title(name, fontsize=9)
    fig.suptitle("Scalp patterns of the planted sources (peak-normalised)")
    report.add_figure(fig, title="Source patterns", section=section)

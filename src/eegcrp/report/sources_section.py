"""Report section of the ``sources`` stage: how much of the decision is brain.

Figures: the share of relevance per ICLabel class per explained class with bootstrap
intervals across subjects; the relevance spectrum of each class's components; the most
relevant components of some subjects as topographies with label, probability and their
relevance. Subjects whose ICA failed are named. Reads only the stage's results
(:func:`eegcrp.sources.load_sources`).
"""

from __future__ import annotations

import html
from typing import Any

import mne
import numpy as np
from matplotlib.figure import Figure

from ..sources import CATEGORIES, load_sources
from .context import ReportContext
from .figures import subplots
from .topography import scalp_info

__all__ = ["CATEGORY_COLORS", "add_sources_section"]

SECTION = "Independent components (ICA x CRP)"
#: Okabe-Ito colours (colour-blind safe) per category.
CATEGORY_COLORS = {"brain": "#009E73", "muscle": "#D55E00", "eye": "#0072B2",
                   "heart": "#CC79A7", "line_noise": "#E69F00", "channel_noise": "#F0E442",
                   "other": "#999999", "residual": "#000000"}
_GROUP_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
#: Subjects and components per subject in the topography figure.
N_SUBJECTS, N_COMPONENTS = 4, 5


def _pct(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{100 * v:.1f} %"


def _settings_html(run: Any) -> str:
    extra, cfg = run.extra, run.manifest.get("config", {}).get("sources", {})
    subjects = extra.get("subjects", {})
    bands = {tuple(r.get("band") or ()) for r in subjects.values()}
    band = ", ".join(f"{b[0]:g}-{b[1]:g} Hz" for b in bands if len(b) == 2)
    rows = "".join(
        f"<tr><td>{html.escape(s)}</td><td>{r['n_components']}</td><td>"
        + html.escape(", ".join(f"{k} {v}" for k, v in sorted(r["labels"].items())))
        + f"</td><td>{r.get('n_iter')}</td></tr>" for s, r in sorted(subjects.items()))
    failed = extra.get("failed", {})
    fail = ("<p><b>ICA failed for " + ", ".join(html.escape(s) for s in failed) +
            "</b>; their windows are left out of every share:</p><ul>" +
            "".join(f"<li>{html.escape(s)}: {html.escape(m)}</li>" for s, m in
                    failed.items()) + "</ul>") if failed else "<p>ICA succeeded for every "\
        "subject.</p>"
    notes = "".join(f"<li>{html.escape(n['note'])} ({n['subjects']} subject(s))</li>"
                    for n in extra.get("notes", []))
    return (
        f"<p>ICA per subject on the cached continuous EEG (volts, common average, not "
        f"z-scored; {html.escape(str(cfg.get('data', 'continuous')))}), method "
        f"<b>{html.escape(str(cfg.get('method')))}</b> (extended infomax model), components: "
        f"{html.escape(str(cfg.get('n_components')))}, band {band}; labels by ICLabel "
        "(mne-icalabel). Every explained window is the sum of one term per component plus "
        "a residual (PCA mean and components not kept); the input relevance is propagated "
        "to the terms with the z-rule (an exact linear virtual layer). Largest conservation "
        f"error over all windows: {extra.get('conservation_error_max', float('nan')):.2g} "
        "(|Σ components + residual − Σ heatmap| / Σ|heatmap|).</p>" + fail
        + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else "")
        + "<table class='table table-sm'><tr><th>subject</th><th>components</th>"
        "<th>ICLabel labels (most probable class)</th><th>iterations</th></tr>" + rows
        + "</table><p>Per cluster (pipeline B): call "
        "<code>eegcrp.sources.load_sources(out).shares_by({(filter key, class): "
        "cluster})</code>.</p>"
    )


def _shares_figure(shares: Any) -> Figure:
    """Bars: share per category and group; error bars: bootstrap interval over subjects."""
    groups = list(dict.fromkeys(shares["group"]))
    fig, axes = subplots(2, 2, figsize=(11, 6.4), layout="constrained", sharey=True)
    cats = list(CATEGORIES)
    x = np.arange(len(cats))
    width = 0.8 / max(len(groups), 1)
    for i, weighting in enumerate(("hard", "probability")):
        for j, measure in enumerate(("positive", "absolute")):
            ax = axes[i, j]
            part = shares[(shares["weighting"] == weighting) & (shares["measure"] == measure)]
            for g, group in enumerate(groups):
                rows = part[part["group"] == group].set_index("category").reindex(cats)
                mean = 100 * rows["share"].to_numpy(np.float64)
                err = 100 * np.abs(np.stack([mean / 100 - rows["ci_low"], rows["ci_high"]
                                             - mean / 100]).astype(np.float64))
                ax.bar(x + (g - (len(groups) - 1) / 2) * width, np.nan_to_num(mean), width,
                       yerr=np.nan_to_num(err), color=_GROUP_COLORS[g % len(_GROUP_COLORS)],
                       label=str(group), error_kw={"elinewidth": 0.9, "capsize": 2})
            ax.set_xticks(x, [c.replace("_", " ") for c in cats], rotation=30, ha="right",
                          fontsize=8)
            ax.set_title(f"{weighting} labels, {measure} relevance", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            if j == 0:
                ax.set_ylabel("share of relevance (%)")
    axes[0, 0].legend(frameon=False, fontsize=8, title="explained class", title_fontsize=8)
    fig.suptitle("Share of relevance per ICLabel class (mean over subjects; error bars: "
                 "bootstrap interval over subjects)", fontsize=10)
    return fig


def _cluster_figure(shares: Any) -> Figure | None:
    """Horizontal bars: brain share of each pooled concept cluster, with its interval."""
    part = shares[(shares["category"] == "brain") & (shares["weighting"] == "hard")
                  & (shares["measure"] == "positive")].dropna(subset=["share"])
    if part.empty:
        return None
    # colours by class in the class figure's order; then the first cluster on top
    classes = list(dict.fromkeys(g.split("/")[0] for g in part["group"]))
    part = part.iloc[::-1]
    colors = [_GROUP_COLORS[classes.index(g.split("/")[0]) % len(_GROUP_COLORS)]
              for g in part["group"]]
    y = np.arange(len(part))
    mean = 100 * part["share"].to_numpy(np.float64)
    err = 100 * np.abs(np.stack([part["share"] - part["ci_low"],
                                 part["ci_high"] - part["share"]]).astype(np.float64))
    fig, ax = subplots(figsize=(6.4, 0.9 + 0.28 * len(part)), layout="constrained")
    ax.barh(y, mean, xerr=np.nan_to_num(err), color=colors,
            error_kw={"elinewidth": 0.9, "capsize": 2})
    ax.set_yticks(y, [f"{g} ({n} subj.)" for g, n in zip(part["group"], part["n_subjects"],
                                                         strict=True)], fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("brain share of positive relevance (%, hard labels)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Brain share per pooled concept cluster (bootstrap interval over subjects)",
                 fontsize=9)
    return fig


def _spectrum_figure(run: Any, classes: list[str]) -> Figure | None:
    """Relevance per DFT bin of the components of each category, per explained class."""
    freqs, spec = run.category_spectra()
    if freqs is None or not spec:
        return None
    fig, axes = subplots(1, len(classes), figsize=(4.6 * len(classes), 3.3),
                         layout="constrained", squeeze=False, sharey=True)
    for c, ax in enumerate(axes[0]):
        for cat in CATEGORIES:
            values = spec.get((c, cat))
            if values is not None and np.any(values != 0):
                ax.plot(freqs, values, color=CATEGORY_COLORS[cat], lw=1.3,
                        label=cat.replace("_", " "))
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set(xlabel="frequency (Hz)", title=f"class {classes[c]}")
        ax.grid(alpha=0.25)
    axes[0, 0].set_ylabel("relevance per bin (logit units, summed)")
    axes[0, 0].legend(frameon=False, fontsize=7)
    fig.suptitle("Component x frequency relevance, summed over the components of each "
                 "ICLabel class, all subjects and selected windows", fontsize=10)
    return fig


def _topography_figure(run: Any, channels: dict[str, Any]) -> Figure | None:
    """Per subject: relevance bars of the top components and their topographies."""
    comps = run.components
    subjects = run.subjects[:N_SUBJECTS]
    if comps.empty or not subjects:
        return None
    pos = scalp_info(channels, 128.0)
    if pos is None:  # bipolar or no positions: no scalp maps
        return None
    info, keep = pos
    abs_cols = [c for c in comps.columns if c.startswith("relevance_absolute/")]
    fig, axes = subplots(len(subjects), N_COMPONENTS + 1,
                         figsize=(2.1 * N_COMPONENTS + 3.6, 2.3 * len(subjects)),
                         layout="constrained", squeeze=False,
                         gridspec_kw={"width_ratios": [2.2] + [1] * N_COMPONENTS})
    for row, subject in enumerate(subjects):
        part = comps[comps["subject"] == subject].copy()
        part["abs"] = part[abs_cols].sum(axis=1) if abs_cols else 0.0
        total = part["abs"].sum()
        part["share"] = part["abs"] / total if total > 0 else 0.0
        top = part.sort_values("share", ascending=False).head(8)
        ax = axes[row, 0]
        ax.barh(np.arange(len(top))[::-1], 100 * top["share"],
                color=[CATEGORY_COLORS[lab] for lab in top["label"]])
        ax.set_yticks(np.arange(len(top))[::-1], [f"IC{int(k)} {lab}" for k, lab in
                                                  zip(top["component"], top["label"],
                                                      strict=True)], fontsize=7)
        ax.set_xlabel("share of |relevance| (%)", fontsize=8)
        ax.set_title(f"subject {subject}", fontsize=9, loc="left")
        ica = run.ica(subject)
        for j in range(N_COMPONENTS):
            tax = axes[row, j + 1]
            if j >= len(top):
                tax.set_visible(False)
                continue
            k = int(top.iloc[j]["component"])
            mne.viz.plot_topomap(ica.mixing[keep, k], info, axes=tax, show=False,
                                 cmap="RdBu_r", contours=0, sensors=True)
            p = ica.probabilities[k].max()
            tax.set_title(f"IC{k}: {ica.labels[k]} (p {p:.2f})\n"
                          f"{100 * top.iloc[j]['share']:.1f} % of |R|, EV "
                          f"{100 * ica.explained_variance[k]:.0f} %", fontsize=7)
    fig.suptitle("Most relevant components (absolute relevance over both classes): "
                 "topographies of the mixing columns (arbitrary sign and scale)", fontsize=10)
    return fig


def add_sources_section(report: mne.Report, ctx: ReportContext) -> None:
    """Add the independent-components section from the verified ``sources`` results."""
    run = load_sources(ctx.folder("sources"))
    if run.skipped:
        report.add_html(f"<p>Not run: {html.escape(run.skipped)}.</p>", title="ICA x CRP",
                        section=SECTION)
        return
    report.add_html(_settings_html(run), title="ICA settings, labels and conservation",
                    section=SECTION)
    all_shares = run.shares
    # groups: "all", one per explained class, and "<class>/<cluster>" per pooled concept
    # cluster (sources stage); the per-class figures show the first two kinds only
    clustered = all_shares["group"].str.contains("/", regex=False)
    shares = all_shares[~clustered]
    classes = [g for g in dict.fromkeys(shares["group"]) if g != "all"]
    brain = shares[(shares["category"] == "brain") & (shares["weighting"] == "hard")
                   & (shares["measure"] == "positive")]
    lines = "".join(f"<li>{html.escape(str(r['group']))}: {_pct(r['share'])} "
                    f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}], {r['n_subjects']} "
                    "subjects</li>" for _, r in brain.iterrows())
    report.add_html(f"<p>Brain share of the positive relevance (hard labels):</p><ul>{lines}"
                    "</ul>", title="How much of the decision is brain", section=SECTION)
    figures = [
        ("Relevance share per ICLabel class", _shares_figure(shares),
         "Reading guide: the taller the brain bar against eye, muscle and the others, the "
         "more of the evidence for each class comes from components ICLabel calls brain."),
        ("Brain share per concept cluster", _cluster_figure(all_shares[clustered]),
         "Reading guide: each bar is one pooled concept cluster (filters of several fold "
         "models that encode the same concept); a cluster far below the others draws its "
         "evidence from eye, muscle or other non-brain components."),
        ("Component relevance spectra", _spectrum_figure(run, classes),
         "Reading guide: where along frequency each kind of component carries relevance "
         "(eye: low frequencies, muscle: broadband high frequencies)."),
        ("Most relevant components", _topography_figure(run, ctx.manifests["explain"].extra
                                                        .get("channels", {})),
         "Reading guide: bars rank a subject's components by their share of |relevance| "
         "(colour = ICLabel class); maps show where each is on the scalp."),
    ]
    for title, fig, caption in figures:
        if fig is not None:
            report.add_figure(fig, title=title, caption=caption, section=SECTION)

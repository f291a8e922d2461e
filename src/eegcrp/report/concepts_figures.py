"""Figures of the concepts report section: every cross-fold figure drawn per concept cluster.

Colours: the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies),
markers cycling beyond its eight colours; noise ("NC") is grey.
"""

from __future__ import annotations

from typing import Any

import mne
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .figures import subplots

__all__ = ["OKABE_ITO", "agreement_figure", "atlas_figure", "cluster_style", "metrics_figure",
           "models_figure", "scatter_figure", "spectra_figure", "topography_figure"]

#: Okabe & Ito (2008) colour-blind-safe palette (black last).
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_NC = "#B0B0B0"
_UNIT = "logit units"


_LINES = ("-", "--", ":", "-.")
_HATCHES = ("", "//", "..", "xx")


def cluster_style(name: str) -> dict[str, str]:
    """Colour, marker, line style and hatch of cluster ``name`` ('1'.., 'NC', 'all'):
    the palette's colours first, then the same colours with other markers, line styles and
    hatches."""
    if name == "NC":
        return {"color": _NC, "marker": ".", "ls": "-", "hatch": ""}
    if name == "all":
        return {"color": "0.35", "marker": "o", "ls": "-", "hatch": ""}
    k = int(name) - 1
    cycle = k // len(OKABE_ITO)
    return {"color": OKABE_ITO[k % len(OKABE_ITO)], "marker": _MARKERS[cycle % len(_MARKERS)],
            "ls": _LINES[cycle % len(_LINES)], "hatch": _HATCHES[cycle % len(_HATCHES)]}


def _order(names: Any) -> list[str]:
    """Cluster names in numeric order, NC last."""
    return sorted(names, key=lambda n: (n == "NC", int(n) if str(n).isdigit() else 0))


def _label(row: pd.Series) -> str:
    if row["cluster"] in ("NC", "all"):
        return str(row["cluster"])
    mark = "*" if row.get("stable") is True else ""
    return f"{row['cluster']}{mark}"


def scatter_figure(filters: pd.DataFrame, classes: list[str]) -> Figure:
    """Pooled UMAP embedding per class, filters coloured by cluster."""
    fig, axes = subplots(1, len(classes), figsize=(4.4 * len(classes) + 0.6, 4.2),
                         layout="constrained", squeeze=False)
    for ax, cls in zip(axes[0], classes, strict=True):
        sub = filters[(filters["class"] == cls) & filters["valid"].fillna(False).astype(bool)]
        names = _order(sub["cluster_pooled"].unique())
        for name in names:
            pts = sub[sub["cluster_pooled"] == name]
            style = cluster_style(name)
            ax.scatter(pts["x_pooled"], pts["y_pooled"], s=9 if name == "NC" else 14,
                       c=style["color"], marker=style["marker"], linewidths=0, alpha=0.85,
                       label=f"{name} ({len(pts)})", zorder=1 if name == "NC" else 2)
        ax.set(title=f"class {cls}", xlabel="UMAP 1 (a.u.)", ylabel="UMAP 2 (a.u.)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(fontsize=7, frameon=False, loc="best", ncols=2 if len(names) > 8 else 1,
                  markerscale=1.3, title="cluster (filters)", title_fontsize=7)
    fig.suptitle("Filters of every fold model, embedded (UMAP) and clustered, pooled over "
                 "repetitions; grey: noise (NC)", fontsize=10)
    return fig


def metrics_figure(clusters: pd.DataFrame, classes: list[str]) -> Figure:
    """Per class and pooled cluster: filters, models, mean relevance, coherence."""
    cols = [("n_filters", "filters", "filters"), ("n_models", "models", "models contributing"),
            ("mean_relevance", "mean relevance", f"relevance per window ({_UNIT})"),
            ("coherence", "coherence", "1 / mean pairwise distance")]
    fig, axes = subplots(len(classes), len(cols), figsize=(13.0, 2.6 * len(classes) + 0.6),
                         layout="constrained", squeeze=False)
    for r, cls in enumerate(classes):
        sub = clusters[(clusters["class"] == cls) & (clusters["scope"] == "pooled")]
        labels = [_label(row) for _, row in sub.iterrows()]
        styles = [cluster_style(n) for n in sub["cluster"]]
        x = np.arange(len(sub))
        for c, (col, title, ylabel) in enumerate(cols):
            ax = axes[r, c]
            bars = ax.bar(x, sub[col].to_numpy(np.float64), color=[s["color"] for s in styles],
                          edgecolor="0.2", lw=0.4)
            for bar, style in zip(bars, styles, strict=True):
                bar.set_hatch(style["hatch"])
            ax.set_xticks(x, labels, fontsize=7, rotation=90 if len(x) > 12 else 0)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.axhline(0, color="0.3", lw=0.6)
            ax.set_title(f"{cls}: {title}", fontsize=9)
            if r == len(classes) - 1:
                ax.set_xlabel("cluster (* stable)", fontsize=8)
    fig.suptitle("Cluster metrics of the pooled clustering (NC: noise; all: every filter)",
                 fontsize=10)
    return fig


def models_figure(filters: pd.DataFrame, classes: list[str]) -> Figure:
    """Stacked bars: filters of each held-out subject's models per pooled cluster."""
    fig, axes = subplots(len(classes), 1, figsize=(9.0, 2.7 * len(classes) + 0.5),
                         layout="constrained", squeeze=False)
    for ax, cls in zip(axes[:, 0], classes, strict=True):
        sub = filters[(filters["class"] == cls) & (filters["cluster_pooled"] != "excluded")]
        table = pd.crosstab(sub["subject"], sub["cluster_pooled"])
        order = _order(table.columns)
        bottom = np.zeros(len(table))
        x = np.arange(len(table))
        for name in order:
            values = table[name].to_numpy(np.float64)
            style = cluster_style(name)
            ax.bar(x, values, bottom=bottom, color=style["color"], hatch=style["hatch"],
                   edgecolor="0.2", lw=0.3, label=name)
            bottom += values
        ax.set_xticks(x, list(table.index), fontsize=7, rotation=90 if len(x) > 20 else 0)
        ax.set(ylabel="filters (all repetitions)", title=f"class {cls}")
        ax.legend(fontsize=7, frameon=False, ncols=1 + len(order) // 13, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), title="cluster", title_fontsize=7)
    axes[-1, 0].set_xlabel("held-out subject (model)")
    fig.suptitle("Filters per model and cluster (pooled clustering)", fontsize=10)
    return fig


def spectra_figure(clusters: pd.DataFrame, arrays: Any, classes: list[str],
                   bands: dict[str, tuple[float, float]], max_clusters: int = 6) -> Figure:
    """Relevance spectra of the ``max_clusters`` largest pooled clusters and NC: mean over
    filters and +-1 SD."""
    fig, axes = subplots(1, len(classes), figsize=(5.0 * len(classes) + 0.5, 3.6),
                         layout="constrained", squeeze=False)
    freqs = np.asarray(arrays["freq"].values, np.float64)
    xmax = min(float(freqs[-1]), max(hi for _, hi in bands.values()))
    for ax, cls in zip(axes[0], classes, strict=True):
        sub = clusters[(clusters["class"] == cls) & (clusters["scope"] == "pooled")
                       & (clusters["n_filters"] > 0)]
        real = sub[sub["label"] >= 0].sort_values("n_filters", ascending=False, kind="stable")
        for _, row in pd.concat([real.head(max_clusters), sub[sub["cluster"] == "NC"]]
                                ).iterrows():
            mean = arrays["relevance_spectrum_mean"].sel(cluster=row["cluster_id"]).values
            sd = arrays["relevance_spectrum_sd"].sel(cluster=row["cluster_id"]).values
            style = cluster_style(row["cluster"])
            colour = style["color"]
            ax.plot(freqs, mean, color=colour, ls=style["ls"], lw=1.3, label=_label(row))
            ax.fill_between(freqs, mean - sd, mean + sd, color=colour, alpha=0.15, lw=0)
        for k, (lo, hi) in enumerate(bands.values()):
            if lo < xmax:
                ax.axvspan(lo, min(hi, xmax), color="0.5", alpha=0.06 if k % 2 else 0.14, lw=0)
        ax.axhline(0, color="0.3", lw=0.7)
        ax.set(xlim=(0, xmax), xlabel="frequency (Hz)",
               ylabel=f"relevance per bin ({_UNIT})", title=f"class {cls}")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax.legend(fontsize=7, frameon=False, ncols=2, title="cluster (* stable)",
                  title_fontsize=7)
    fig.suptitle(f"Relevance spectra of the {max_clusters} largest clusters and NC\n(per "
                 "selected window, summed over channels; line: mean over the cluster's "
                 "filters, band: ±1 SD; shaded: the bands)", fontsize=10)
    return fig


def _power_row(power: np.ndarray, bands: dict[str, tuple[float, float]], display: str
               ) -> tuple[np.ndarray, tuple[float, float], str]:
    """(channel, band) power as drawn, its colour limits and unit."""
    if display == "db":
        with np.errstate(divide="ignore", invalid="ignore"):
            values = 10 * np.log10(power)
        values[~np.isfinite(values)] = np.nan
        unit = "power (dB, z-scored input)"
    elif display == "one_over_f":  # the thesis: x band centre / first band centre, / max
        centres = np.array([(lo + hi) / 2 for lo, hi in bands.values()])
        values = power / np.nanmax(power) * (centres / centres[0])[None, :]
        values = values / np.nanmax(values)
        return values, (0.0, 1.0), "power x f / f_delta (max = 1)"
    else:
        values, unit = power, "power (z-scored input², per bin)"
    finite = values[np.isfinite(values)]
    lim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return values, (lim if lim[1] > lim[0] else (lim[0], lim[0] + 1.0)), unit


def topography_figure(power: np.ndarray, relevance: np.ndarray, topo: Any,
                      ch_names: list[str], bands: dict[str, tuple[float, float]],
                      display: str, title: str) -> Figure:
    """Rows: input power and relevance; columns: bands. ``topo`` = (mne.Info, channel
    indices) for scalp maps, or None for per-channel bars (bipolar or unknown positions)."""
    names = list(bands)
    pvals, plim, punit = _power_row(power, bands, display)
    rlim = float(np.nanmax(np.abs(relevance), initial=0.0)) or 1.0
    rows = [(pvals, plim, "viridis" if display == "db" else "Reds", punit),
            (relevance, (-rlim, rlim), "RdBu_r", f"relevance ({_UNIT} per window)")]
    fig, axes = subplots(2, len(names), figsize=(1.9 * len(names) + 1.4, 4.3),
                         layout="constrained", squeeze=False)
    for r, (values, vlim, cmap, unit) in enumerate(rows):
        im = None
        for b, band in enumerate(names):
            ax = axes[r, b]
            if topo is not None:
                info, idx = topo
                im, _ = mne.viz.plot_topomap(np.nan_to_num(values[idx, b]), info, axes=ax,
                                             show=False, cmap=cmap, vlim=vlim, contours=0,
                                             sensors=True, image_interp="linear")
            else:
                norm = Normalize(*vlim)
                ax.bar(np.arange(len(ch_names)), np.nan_to_num(values[:, b]),
                       color=colormaps.get_cmap(cmap)(norm(np.nan_to_num(values[:, b]))),
                       edgecolor="0.2", lw=0.4)
                ax.set_xticks(np.arange(len(ch_names)), ch_names, fontsize=7)
                ax.set_ylim(*vlim)
                if b == 0:
                    ax.set_ylabel(unit, fontsize=7)
                im = ScalarMappable(norm=norm, cmap=cmap)
            if r == 0:
                lo, hi = bands[band]
                ax.set_title(f"{band}\n{lo:g}-{hi:g} Hz", fontsize=9)
        cb = fig.colorbar(im, ax=axes[r].tolist(), shrink=0.85, pad=0.02)
        cb.set_label(unit, fontsize=7)
        cb.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=10)
    return fig


def agreement_figure(agreement: pd.DataFrame, classes: list[str]) -> Figure:
    """Mean correlation (+-SD, dots: pairs) of same vs different held-out subjects."""
    fig, ax = subplots(figsize=(2.6 * len(classes) + 1.5, 3.4), layout="constrained")
    rng = np.random.default_rng(0)
    width = 0.38
    for c, cls in enumerate(classes):
        for k, (kind, colour) in enumerate((("same", OKABE_ITO[4]),
                                            ("different", OKABE_ITO[5]))):
            r = agreement.loc[(agreement["class"] == cls) & (agreement["kind"] == kind),
                              "r"].to_numpy(np.float64)
            r = r[np.isfinite(r)]
            pos = c + (k - 0.5) * width
            if not len(r):
                ax.text(pos, 0.02, "n/a", ha="center", fontsize=7)
                continue
            ax.bar(pos, r.mean(), width * 0.9, yerr=r.std() if len(r) > 1 else None,
                   color=colour, alpha=0.8, label=kind if c == 0 else None, capsize=2)
            if len(r) <= 400:
                ax.scatter(pos + rng.uniform(-0.1, 0.1, len(r)), r, s=4, color="0.2",
                           alpha=0.5, zorder=3, linewidths=0)
    ax.set_xticks(np.arange(len(classes)), [f"class {c}" for c in classes])
    ax.set(ylabel="Pearson r of spectral relevance", ylim=(-1.05, 1.05))
    ax.axhline(0, color="0.3", lw=0.6)
    ax.legend(frameon=False, fontsize=8, title="held-out subject", title_fontsize=8)
    ax.set_title("Model agreement: same vs different held-out subject", fontsize=9)
    return fig


def atlas_figure(entries: list[dict[str, Any]], sfreq: float, ch_names: list[str],
                 title: str) -> Figure:
    """Rows: representative filters; columns: reference-window heatmaps, then the windows'
    activation and relevance time courses. ``entries``: dicts with ``key``, ``heatmaps``
    (w, C, T), ``activation`` and ``relevance`` (w, T_layer), ``layer_times``."""
    n_win = max(1, max(len(e["heatmaps"]) for e in entries))
    fig, axes = subplots(len(entries), n_win + 1, squeeze=False,
                         figsize=(2.7 * n_win + 3.4, 2.4 * len(entries) + 0.6),
                         layout="constrained")
    # at most ~32 channel labels: more are unreadable at any size the figure allows
    every = max(1, -(-len(ch_names) // 32))
    ticks = np.arange(0, len(ch_names), every)
    fontsize = min(7.0, 120.0 / max(len(ticks), 1))
    for r, e in enumerate(entries):
        heat = e["heatmaps"]
        lim = float(np.percentile(np.abs(heat), 99.5)) if heat.size else 1.0
        lim = lim or 1.0
        for w in range(n_win):
            ax = axes[r, w]
            if w >= len(heat):
                ax.set_visible(False)
                continue
            n_t = heat.shape[-1]
            im = ax.imshow(heat[w], aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                           extent=(0, n_t / sfreq, len(ch_names) - 0.5, -0.5),
                           interpolation="nearest")
            # labels on the first column only; ticks without labels still cost the
            # constrained layout one text extent each (64-channel atlases: ~half its time)
            if w == 0:
                ax.set_yticks(ticks, [ch_names[i] for i in ticks], fontsize=fontsize)
            else:
                ax.set_yticks([])
            ax.set_title(f"{e['key']} window {w + 1}" if w == 0 else f"window {w + 1}",
                         fontsize=8)
            if r == len(entries) - 1:
                ax.set_xlabel("time in window (s)", fontsize=8)
            if w == 0:
                ax.set_ylabel("channel", fontsize=8)
        cb = fig.colorbar(im, ax=axes[r, :n_win].tolist(), shrink=0.9, pad=0.01)
        cb.set_label(f"relevance ({_UNIT})", fontsize=7)
        cb.ax.tick_params(labelsize=6)
        ax = axes[r, n_win]
        t = e["layer_times"]
        act = e["activation"]
        scale = float(np.abs(act).max()) or 1.0
        for w in range(len(act)):
            ax.plot(t, act[w] / scale, color=OKABE_ITO[4], lw=0.8, alpha=0.7,
                    label="activation (/max)" if w == 0 else None)
        rel = e["relevance"]
        rscale = float(np.abs(rel).max()) or 1.0
        for w in range(len(rel)):
            ax.plot(t, rel[w] / rscale, color=OKABE_ITO[5], lw=0.8, alpha=0.7,
                    label="relevance (/max)" if w == 0 else None)
        ax.axhline(0, color="0.3", lw=0.5)
        ax.set(ylim=(-1.05, 1.05), ylabel="normalised (a.u.)")
        ax.set_title("layer time courses", fontsize=8)
        if r == 0:
            ax.legend(fontsize=6, frameon=False, loc="lower left")
        if r == len(entries) - 1:
            ax.set_xlabel("time in window (s)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig

"""Report section for the explain stage: concept relevance (CRP) of the fold models.

Reads the results store ``<output_dir>/explain/`` (see :mod:`eegcrp.store`) and adds nothing
when the explain stage has not run. The store is read fold by fold and, for the heatmaps,
slice by slice, so large runs (many folds, 64 channels) are not loaded into memory at once.

Conventions
-----------
* A filter's **relevance share** in a fold and class is its total relevance (summed over the
  class's candidate windows) divided by the summed absolute relevance of all filters of the
  layer: signed, in %, and comparable between folds whose logits differ in scale.
* Means over "folds and selected windows" pool the selected windows of all folds (fold means
  weighted by the number of windows each fold selected).
* Filter ``k`` of two fold models is not the same concept: the models are trained
  independently. The figures here pool every filter of the layer (which is fine); figures
  per concept across folds are drawn per concept cluster by the concepts stage
  (:mod:`eegcrp.report.concepts_section`), never per filter index.
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass
from typing import Any

import mne
import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from ..errors import StoreError
from ..relevance.spectral import band_mean, band_sum
from ..store import RelevanceRun, open_relevance
from .context import ReportContext
from .figures import subplots
from .topography import draw_channels, scalp_info

__all__ = ["RelevanceSummary", "add_relevance_section",
           "summarise_relevance"]

_UNIT = "relevance (logit units)"

#: Short labels of the canonical bands in the spectrum figure.
_GREEK = {"delta": "δ", "theta": "θ", "alpha": "α", "mu": "μ", "beta": "β", "gamma": "γ"}


# --------------------------------------------------------------------------- aggregation
@dataclass
class RelevanceSummary:
    """Run-level aggregates behind the figures (see the module docstring).

    Attributes
    ----------
    classes, ch_names : list of str
    layer : str
    n_folds : int
    share : ndarray (fold, class, filter)
        Relevance share of each filter (fraction; NaN where a fold has no relevance).
    n_selected : ndarray (class, filter)
        Selected windows summed over folds.
    freqs : ndarray (freq,)
        Frequency of each DFT bin in Hz.
    spectral : ndarray (class, filter, channel, freq)
        Mean relevance per bin of a selected window (NaN without selected windows).
    power : ndarray (class, filter, channel, freq)
        Mean energy per bin of the selected (z-scored) windows.

    The (class, filter) arrays are indexed by filter position only to pool over every filter
    (:meth:`all_filters`); never read them per filter index across folds.
    """

    classes: list[str]
    ch_names: list[str]
    layer: str
    n_folds: int
    share: np.ndarray
    n_selected: np.ndarray
    freqs: np.ndarray
    spectral: np.ndarray
    power: np.ndarray

    def all_filters(self, values: np.ndarray) -> np.ndarray:
        """Mean over the selected windows of all filters of a (class, filter, ...) mean."""
        n = self.n_selected.astype(np.float64)
        w = n.reshape(n.shape + (1,) * (values.ndim - 2))
        total = np.nansum(np.where(w > 0, values, 0.0) * w, axis=1)
        denom = n.sum(1).reshape((-1,) + (1,) * (values.ndim - 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, total / np.where(denom > 0, denom, 1), np.nan)


def _nanmean(values: Any, axis: int | None = None) -> Any:
    """NaN-aware mean without warnings; all-NaN slices give NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(values, np.float64), axis=axis)


def summarise_relevance(run: RelevanceRun) -> RelevanceSummary:
    """Aggregate a run over folds and every filter (reads each fold's summaries once)."""
    if not run.folds:
        raise StoreError(f"no folds in {run.run_dir}")
    meta = run.meta
    totals, counts = [], []
    for fold in run.folds:
        totals.append(fold.summary("total_relevance").values.astype(np.float64))
        counts.append(fold.summary("n_selected").values.astype(np.int64))
    total = np.stack(totals)
    n_sel = np.stack(counts)
    denom = np.abs(total).sum(-1, keepdims=True)
    share = np.divide(total, denom, out=np.full_like(total, np.nan), where=denom > 0)
    n_total = n_sel.sum(0)
    n_classes, n_filters = n_total.shape
    n_channels = len(meta["ch_names"])
    freqs = np.asarray(meta["freqs"], np.float64)
    spec = np.zeros((n_classes, n_filters, n_channels, len(freqs)))
    power = np.zeros_like(spec)
    for fold, n in zip(run.folds, n_sel, strict=True):
        w = n.astype(np.float64)[..., None, None]
        spec += np.nan_to_num(fold.summary("spectral_relevance_sum").values.astype(np.float64))
        pm = fold.summary("power_mean").values.astype(np.float64)
        power += np.where(w > 0, np.nan_to_num(pm), 0.0) * w
    with np.errstate(invalid="ignore", divide="ignore"):
        div = np.where(n_total > 0, n_total, np.nan).astype(np.float64)
        spec /= div[..., None, None]
        power /= div[..., None, None]
    return RelevanceSummary(
        classes=list(meta["classes"]), ch_names=list(meta["ch_names"]),
        layer=str(meta.get("layer", "")), n_folds=len(run.folds), share=share,
        n_selected=n_total, freqs=freqs, spectral=spec, power=power,
    )


# --------------------------------------------------------------------------- HTML
def _selection_rule(meta: dict[str, Any]) -> str:
    if meta.get("selection") == "top_k":
        rule = f"the top {meta.get('top_k')} windows"
    else:
        rule = (f"the smallest set of windows holding {100 * float(meta.get('share', 0)):g} % "
                "of the filter's total absolute relevance")
    rank = "|relevance|" if meta.get("rank_by", "abs") == "abs" else "positive relevance"
    source = "held-out (test)" if meta.get("select_from", "test") == "test" else "training"
    cls = "of the explained class only" if meta.get("by_class", True) else "of any class"
    corr = {"all": "", "correct": ", correctly classified only",
            "incorrect": ", misclassified only"}.get(str(meta.get("correctness", "all")), "")
    return (f"{rule}, ranked by {rank}, among the {source} subject's windows {cls}{corr}")


def _fmt_quantiles(rows: list[Any]) -> tuple[str, str]:
    """Median over folds of the fold medians, and the typical 5-95 % range across folds."""
    q = np.array([r for r in rows if r is not None and len(r) == 3], dtype=np.float64)
    q = q[np.all(np.isfinite(q), axis=1)] if q.size else q
    if not q.size:
        return "n/a", "n/a"
    lo, med, hi = np.median(q[:, 0]), np.median(q[:, 1]), np.median(q[:, 2])
    env = f" (all folds: {q[:, 0].min():.3f} to {q[:, 2].max():.3f})" if len(q) > 1 else ""
    return f"{med:.3f}", f"{lo:.3f} to {hi:.3f}{env}"


def _settings_html(run: RelevanceRun, summary: RelevanceSummary) -> str:
    meta = run.meta
    cons = run.conservation()
    reps = sorted({f.repetition for f in run.folds})
    subjects = sorted({f.subject for f in run.folds})
    first = meta.get("first_layer_rule") or "the composite's own rule"
    zero_bias = bool(meta.get("zero_bias", True))
    bias_txt = ("biases (incl. merged batch norms) left out of the rules, so relevance is "
                "conserved" if zero_bias else
                "biases kept in the rules: relevance leaks at the biases and the ratios "
                "below may deviate from 1")
    up_med, up_rng = _fmt_quantiles(list(cons["layer_over_logit"]))
    lo_med, lo_rng = _fmt_quantiles(list(cons["input_over_layer"]))
    chain = [(np.asarray(a, float) * np.asarray(b, float)).tolist()
             for a, b in zip(cons["layer_over_logit"], cons["input_over_layer"], strict=True)
             if a is not None and b is not None]
    ch_med, ch_rng = _fmt_quantiles(chain)
    err_up = _nanmean(cons["conservation_upper"].to_numpy(np.float64))
    err_lo = _nanmean(cons["conservation_lower"].to_numpy(np.float64))
    n = summary.n_selected
    rows = [
        ("logit → layer", "Σ layer relevance / logit (every window and class)", up_med,
         up_rng, f"{err_up:.2g}"),
        ("layer → input", "Σ input heatmap / filter relevance (every selected window)",
         lo_med, lo_rng, f"{err_lo:.2g}"),
        ("logit → input", "Σ input relevance / logit (≈ product of the two stages)", ch_med,
         ch_rng, ""),
    ]
    table = ("<table class='table table-sm'><tr><th>stage</th><th>ratio</th><th>median</th>"
             "<th>5-95 %</th><th>relative error</th></tr>" +
             "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                     for r in rows) + "</table>")
    return (
        f"<p>Concept relevance propagation of {len(run.folds)} fold model(s) "
        f"({len(subjects)} held-out subject(s) x {len(reps)} repetition(s)). Concepts are the "
        f"{n.shape[1]} filters of layer <b>{html.escape(summary.layer)}</b>; LRP composite "
        f"<b>{html.escape(str(meta.get('composite', '')))}</b>, first layer: "
        f"{html.escape(first)}; zero bias: <b>{zero_bias}</b> ({bias_txt}). Relevance "
        f"maximisation selects, per class and filter, {html.escape(_selection_rule(meta))}: "
        f"median {np.median(n):g} window(s) per class and filter over all folds "
        f"(range {n.min()}-{n.max()}). Bands: "
        + ", ".join(f"{html.escape(k)} {lo:g}-{hi:g} Hz" for k, (lo, hi) in run.bands.items())
        + ".</p><p>Conservation: relevance starts at the logit of the explained class and "
        "should arrive unchanged at the layer and at the input (ratios ≈ 1). Median over "
        "folds of the fold medians; 5-95 %: median over folds of the fold percentiles (in "
        "brackets the widest range of any fold); relative error: Σ|deviation| / Σ|target|, "
        "mean over folds. The end-to-end row multiplies the stages fold by fold (an "
        "approximation: percentiles do not multiply exactly).</p>" + table +
        "<p>Filter indices are fold-specific: the fold models are trained independently, so "
        "filter k of two folds is not the same concept. The figures below pool every filter "
        "of the layer; figures per concept across folds are drawn per concept cluster in the "
        "section <i>Concepts shared across subjects</i> (stage <code>concepts</code>).</p>"
    )


# --------------------------------------------------------------------------- figures
def _shade_bands(ax: Any, bands: dict[str, tuple[float, float]], xmax: float) -> None:
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for k, (name, (lo, hi)) in enumerate(bands.items()):
        if lo >= xmax:
            continue
        ax.axvspan(lo, min(hi, xmax), color="0.5", alpha=0.08 if k % 2 == 0 else 0.18, lw=0)
        ax.text((lo + min(hi, xmax)) / 2, 0.985, _GREEK.get(name.lower(), name),
                transform=trans, ha="center", va="top", fontsize=8, color="0.3")


def _spectra_figure(s: RelevanceSummary, bands: dict[str, tuple[float, float]]) -> Figure:
    """Relevance per frequency bin of every filter, per class (mean over channels, folds and
    the selected windows of all filters)."""
    fig, ax = subplots(figsize=(6.0, 3.4), layout="constrained")
    xmax = float(s.freqs[-1])
    spec = _nanmean(s.spectral, axis=2)  # class x filter x freq
    everything = s.all_filters(spec)  # class x freq
    colors = colormaps.get_cmap("tab10").colors
    for c in range(len(s.classes)):
        ax.plot(s.freqs, everything[c], color=colors[c % 10], lw=1.5, label=s.classes[c])
    _shade_bands(ax, bands, xmax)
    ax.set_xlim(0, xmax)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + (0.1 + 0.07 * len(s.classes)) * (hi - lo))
    ax.set(xlabel="frequency (Hz)", ylabel=f"{_UNIT} per bin")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.legend(frameon=False, fontsize=7, loc="upper right", bbox_to_anchor=(1, 0.93),
              title="class", title_fontsize=7)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.grid(alpha=0.25)
    df = float(s.freqs[1] - s.freqs[0]) if len(s.freqs) > 1 else 0.0
    ax.set_title(f"Spectral relevance of all {s.spectral.shape[1]} filters of every fold\n"
                 f"mean over channels and selected windows; bins of {df:.3g} Hz", fontsize=9)
    return fig


def _topomap_figure(
    values: np.ndarray, channels: dict[str, Any], classes: list[str],
    bands: dict[str, tuple[float, float]], *, diverging: bool, label: str, title: str,
) -> Figure:
    """Rows: classes, columns: bands; ``values`` (class, channel, band), drawn as scalp
    maps or per-channel bars (:func:`eegcrp.report.topography.draw_channels`)."""
    n_classes, _, n_bands = values.shape
    fig, axes = subplots(n_classes, n_bands, figsize=(1.85 * n_bands + 1.3,
                                                          1.95 * n_classes + 0.7),
                         layout="constrained", squeeze=False)
    names = list(bands)
    if diverging:  # symmetric limits per row (class): bands comparable within a class
        lims = [(-m, m) for m in (float(np.nanmax(np.abs(values[c]), initial=0.0)) or 1.0
                                  for c in range(n_classes))]
        groups = [(axes[c].tolist(), lims[c], [(c, b) for b in range(n_bands)])
                  for c in range(n_classes)]
    else:  # power spans decades across bands: shared limits per column (band)
        groups = []
        for b in range(n_bands):
            col = values[:, :, b]
            finite = col[np.isfinite(col)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if hi <= lo:
                hi = lo + 1.0
            groups.append((axes[:, b].tolist(), (lo, hi), [(c, b) for c in range(n_classes)]))
    cmap = "RdBu_r" if diverging else "viridis"
    for group_axes, vlim, cells in groups:
        im = None
        for c, b in cells:
            ax = axes[c, b]
            im = draw_channels(ax, values[c, :, b], channels, vlim=vlim, cmap=cmap) or \
                ScalarMappable(Normalize(*vlim), cmap)
            if c == 0:
                lo_f, hi_f = bands[names[b]]
                ax.set_title(f"{names[b]}\n{lo_f:g}-{hi_f:g} Hz", fontsize=9)
            if b == 0:
                ax.text(-0.12, 0.5, classes[c], transform=ax.transAxes, rotation=90,
                        ha="right", va="center", fontsize=9)
        if diverging:
            cb = fig.colorbar(im, ax=group_axes, shrink=0.85, pad=0.02)
        else:
            cb = fig.colorbar(im, ax=group_axes, orientation="horizontal", shrink=0.85,
                              pad=0.02, aspect=12)
        cb.set_label(label, fontsize=7)
        cb.ax.tick_params(labelsize=6)
        if diverging:
            cb.formatter.set_powerlimits((-2, 3))
    fig.suptitle(title, fontsize=10)
    return fig


def _band_values(s: RelevanceSummary, bands: dict[str, tuple[float, float]],
                 store_idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(class, channel, band) relevance (sum over the band's bins) and power in dB (mean
    energy per bin), both per selected window of all filters."""
    rel = s.all_filters(s.spectral)[:, store_idx]  # class x channel x freq
    pw = s.all_filters(s.power)[:, store_idx]
    rel_b, _ = band_sum(rel, s.freqs, bands)
    pw_b, _ = band_mean(pw, s.freqs, bands)
    with np.errstate(divide="ignore", invalid="ignore"):
        pw_db = 10 * np.log10(pw_b)
    pw_db[~np.isfinite(pw_db)] = np.nan
    return rel_b, pw_db


# --------------------------------------------------------------------------- section
def add_relevance_section(report: mne.Report, ctx: ReportContext) -> None:
    """Add the concept relevance section from the verified ``explain`` results."""
    run = open_relevance(ctx.folder("explain"))
    if not run.folds:
        return
    section = "Concept relevance"
    s = summarise_relevance(run)
    sfreq = float(run.meta.get("sfreq", ctx.dataset.sfreq))
    # bands with at least one DFT bin, from the store's definitions
    bands = {k: v for k, v in run.bands.items()
             if np.any((s.freqs >= v[0]) & (s.freqs < v[1]))}
    report.add_html(_settings_html(run, s), title="Explanation settings and conservation",
                    section=section)
    figures: list[tuple[str, Figure | None, str]] = [
        ("Relevance spectra", _spectra_figure(s, bands or run.bands),
         "Relevance per DFT bin of the selected windows of every filter (sums over bins to "
         "the heatmap total); shaded: the bands of the explain configuration. Per concept: "
         "see the concepts section."),
    ]
    if bands and run.channels.get("names"):
        if scalp_info(run.channels, sfreq) is None:
            report.add_html("<p>Band values are drawn as one bar per channel: the channels "
                            "are bipolar derivations or too few have scalp positions for a "
                            "map.</p>", title="Band topographies", section=section)
        rel_b, pw_db = _band_values(s, bands, list(range(len(run.channels["names"]))))
        for title, values, diverging, label, suptitle, caption in (
            ("Band relevance topographies", rel_b, True, "band relevance (logit units)",
             "Relevance per band and channel: mean over the selected windows of all filters "
             "and folds; symmetric limits per class",
             "Relevance summed over each band's DFT bins, per selected window."),
            ("Band power topographies", pw_db, False, "energy per bin (dB, z-scored input)",
             "Band power of the same windows (mean energy per bin); shared limits per band",
             "Mean energy per DFT bin within each band of the z-scored model input."),
        ):
            try:
                fig = _topomap_figure(values, run.channels, s.classes, bands,
                                      diverging=diverging,
                                      label=label, title=suptitle)
            except (ValueError, RuntimeError) as exc:  # e.g. collinear sensor positions
                report.add_html(f"<p>{html.escape(title)} skipped: {html.escape(str(exc))}"
                                "</p>", title=title, section=section)
                continue
            figures.append((title, fig, caption))
    for title, fig, caption in figures:
        if fig is not None:
            report.add_figure(fig, title=title, caption=caption, section=section)

"""Report section of the ``regions`` stage: relevance per scalp region x band.

Figures: a sensor map of each region; per class a region x band heatmap of the positive
relevance share relative to the region's channel share (log2 ratio), marked where the
excess over the channel share is significant after FDR; the class difference of the
shares with its marks. Reads only the stage's results (:func:`eegcrp.regions.load_regions`).
"""

from __future__ import annotations

import html
from typing import Any

import mne
import numpy as np
from matplotlib.figure import Figure

from ..regions import load_regions
from .context import ReportContext
from .figures import subplots
from .topography import scalp_info

__all__ = ["add_regions_section"]

SECTION = "Scalp regions x bands"


def _region_map(layout: Any, channels: dict[str, Any]) -> Figure | None:
    """One head per region: its channels dark, the others light."""
    pos = scalp_info(channels, 128.0)
    if pos is None:  # bipolar or no positions: no scalp maps
        return None
    info, keep = pos
    names = [channels["names"][k] for k in keep]
    regions = list(layout.regions)
    ncols = min(7, len(regions))
    nrows = int(np.ceil(len(regions) / ncols))
    fig, axes = subplots(nrows, ncols, figsize=(1.7 * ncols, 1.9 * nrows),
                         layout="constrained", squeeze=False)
    for ax, region in zip(axes.ravel(), regions, strict=False):
        mask = np.array([n in layout.regions[region] for n in names])
        mne.viz.plot_topomap(np.zeros(len(names)), info, axes=ax, show=False, cmap="Greys",
                             vlim=(0, 1), contours=0, sensors=True, mask=mask,
                             mask_params={"marker": "o", "markerfacecolor": "#0072B2",
                                          "markeredgecolor": "k", "markersize": 6})
        ax.set_title(f"{region}\n({mask.sum()} ch)", fontsize=8)
    for ax in axes.ravel()[len(regions):]:
        ax.set_visible(False)
    fig.suptitle(f"Regions ({layout.name} layout); blue dots: the region's channels",
                 fontsize=10)
    return fig


def _grid(cells: Any, classes: list[str], value: str, title: str, label: str,
          log2: bool) -> Figure:
    regions = list(dict.fromkeys(cells["region"]))
    bands = list(dict.fromkeys(cells["band"]))
    fig, axes = subplots(1, len(classes), figsize=(2.0 + 1.0 * len(bands) * len(classes),
                                                      1.2 + 0.32 * len(regions)),
                         layout="constrained", squeeze=False, sharey=True)
    grids = []
    for cls in classes:
        part = cells[cells["_group"] == cls].set_index(["region", "band"])
        grid = np.array([[part.loc[(r, b), value] if (r, b) in part.index else np.nan
                          for b in bands] for r in regions], np.float64)
        sig = np.array([[bool(part.loc[(r, b), "significant"]) if (r, b) in part.index
                         else False for b in bands] for r in regions])
        grids.append((np.log2(np.clip(grid, 1e-3, None)) if log2 else grid, sig))
    lim = max([float(np.nanmax(np.abs(g))) for g, _ in grids if np.isfinite(g).any()] +
              [1e-9])
    for ax, cls, (grid, sig) in zip(axes[0], classes, grids, strict=True):
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        for r, b in zip(*np.nonzero(sig), strict=True):
            ax.text(b, r, "*", ha="center", va="center", fontsize=12, fontweight="bold")
        ax.set_xticks(range(len(bands)), bands, rotation=30, fontsize=8)
        ax.set_yticks(range(len(regions)), regions, fontsize=8)
        ax.set_xlabel("band")
        ax.set_title(str(cls), fontsize=9)
    axes[0, 0].set_ylabel("region")
    cb = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.9)
    cb.set_label(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def _table(cells: Any) -> str:
    sig = cells[cells["significant"] & (cells["measure"] == "positive")]
    if sig.empty:
        return "<p>No region x band cell holds significantly more or less positive " \
               "relevance than its channel share (FDR).</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(r['class']))}</td><td>{html.escape(r['region'])}</td>"
        f"<td>{html.escape(r['band'])}</td><td>{100 * r['share']:.1f} %</td>"
        f"<td>{100 * r['expected']:.1f} %</td><td>{r['ratio']:.2f}</td><td>{r['dz']:.2f}</td>"
        f"<td>{r['p_fdr']:.3g}</td></tr>"
        for _, r in sig.sort_values(["class", "excess"], ascending=[True, False]).iterrows())
    return ("<table class='table table-sm'><tr><th>class</th><th>region</th><th>band</th>"
            "<th>share of the band's positive relevance</th><th>channel share</th>"
            "<th>ratio</th><th>d<sub>z</sub></th><th>p (FDR)</th></tr>" + rows + "</table>")


def add_regions_section(report: mne.Report, ctx: ReportContext) -> None:
    """Add the region x band section from the verified ``regions`` results."""
    run = load_regions(ctx.folder("regions"))
    if run.skipped:
        report.add_html(f"<p>Not run: {html.escape(run.skipped)}.</p>", title="Regions",
                        section=SECTION)
        return
    extra, layout, cells = run.manifest["extra"], run.layout, run.cells
    lay = extra["layout"]
    notes = [f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
             for k, v in (("regions without channels", lay["empty"]),
                          ("regions below regions.min_channels", lay["small"]),
                          ("lobes merged across sides", lay["merged"]),
                          ("channels in no region", lay["unassigned"]),
                          ("preset channels missing from the data", lay["missing"])) if v]
    report.add_html(
        f"<p>{len(layout.regions)} regions ({html.escape(layout.name)}), "
        f"{len(extra['subjects'])} subjects, test: {html.escape(extra['test'])} across "
        f"subjects of each region's share of the band's relevance minus its channel share, "
        f"Benjamini-Hochberg FDR {extra['alpha']:g} over the cells of each class and "
        f"measure; the smallest p-value {len(extra['subjects'])} subjects allow is "
        f"{extra.get('min_p', float('nan')):.2g} (every subject with the same sign), so with "
        "few subjects and many cells only effects consistent across subjects survive."
        "</p>" + ("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                          + "</ul>" if notes else "") + _table(cells),
        title="Regions, test and significant cells", section=SECTION)
    classes = list(dict.fromkeys(cells["class"]))
    pos = cells[cells["measure"] == "positive"].assign(_group=lambda d: d["class"])
    diff = run.class_difference
    diff = diff[diff["measure"] == "positive"].assign(
        _group=lambda d: d["class_a"] + " − " + d["class_b"])
    figures = [
        ("Region map", _region_map(layout, ctx.manifests["explain"].extra.get("channels",
                                                                            {})),
         "Reading guide: which electrodes make up each region."),
        ("Region x band relevance", _grid(
            pos, classes, "ratio", "Positive relevance share / channel share per region and "
            "band (mean over subjects; * = significant excess, FDR)",
            "log2(share / channel share)", True),
         "Reading guide: red cells hold more of the band's evidence for the class than their "
         "number of channels predicts, blue less; * marks cells that pass the group test."),
    ]
    if not diff.empty:
        figures.append(("Class difference", _grid(
            diff, list(dict.fromkeys(diff["_group"])), "difference",
            "Difference of the positive relevance share between classes (* = significant, "
            "FDR)", "share difference (fraction)", False),
            "Reading guide: red = the region x band holds a larger share of the first "
            "class's positive relevance than of the second's."))
    for title, fig, caption in figures:
        if fig is not None:
            report.add_figure(fig, title=title, caption=caption, section=SECTION)

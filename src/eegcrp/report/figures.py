"""Figures built without pyplot.

Report figures are :class:`matplotlib.figure.Figure` objects drawn straight to PNG by
:meth:`mne.Report.add_figure`: no GUI backend is chosen (nothing happens at import, no
backend is forced), no global figure registry fills up, nothing needs closing.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

__all__ = ["forest_plot", "subplots"]

_FIGURE_KEYS = ("figsize", "dpi", "layout", "facecolor")


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """:func:`matplotlib.pyplot.subplots` for a figure outside pyplot.

    ``figsize``, ``dpi``, ``layout`` and ``facecolor`` go to the :class:`Figure`, the rest
    (``squeeze``, ``sharex``, ``sharey``, ``gridspec_kw`` ...) to :meth:`Figure.subplots`.
    """
    fig = Figure(**{k: kwargs.pop(k) for k in _FIGURE_KEYS if k in kwargs})
    return fig, fig.subplots(nrows, ncols, **kwargs)


def forest_plot(rows: list[tuple[str, float, float, float]], *, chance: float | None = None,
                xlabel: str = "balanced accuracy", title: str = "",
                colors: list[str] | None = None) -> Figure:
    """Means with their intervals, one row each, top to bottom, chance as a dashed line.

    Parameters
    ----------
    rows : list of (label, mean, low, high)
    chance : float | None
    colors : list of str | None
        One per row (default: all blue).
    """
    longest = max((len(r[0]) for r in rows), default=0)  # labels take the left of the figure
    fig, ax = subplots(figsize=(max(6.4, 4.0 + 0.08 * longest), 0.9 + 0.36 * len(rows)),
                       layout="constrained")
    y = list(range(len(rows)))[::-1]
    for k, (_, mean, lo, hi) in enumerate(rows):
        color = colors[k] if colors else "tab:blue"
        if lo == lo and hi == hi:
            ax.hlines(y[k], lo, hi, color=color, lw=2)
        ax.plot(mean, y[k], "o", color=color)
    if chance is not None:
        ax.axvline(chance, color="gray", ls="--", lw=1, label=f"chance {chance:.2f}")
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.set_yticks(y, [r[0] for r in rows])
    ax.set(xlabel=xlabel, title=title)
    ax.grid(axis="x", alpha=0.3)
    return fig

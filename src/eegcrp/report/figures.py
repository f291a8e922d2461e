"""Figures built without pyplot.

Report figures are :class:`matplotlib.figure.Figure` objects drawn straight to PNG by
:meth:`mne.Report.add_figure`: no GUI backend is chosen (nothing happens at import, no
backend is forced), no global figure registry fills up, nothing needs closing.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

__all__ = ["subplots"]

_FIGURE_KEYS = ("figsize", "dpi", "layout", "facecolor")


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """:func:`matplotlib.pyplot.subplots` for a figure outside pyplot.

    ``figsize``, ``dpi``, ``layout`` and ``facecolor`` go to the :class:`Figure`, the rest
    (``squeeze``, ``sharex``, ``sharey``, ``gridspec_kw`` ...) to :meth:`Figure.subplots`.
    """
    fig = Figure(**{k: kwargs.pop(k) for k in _FIGURE_KEYS if k in kwargs})
    return fig, fig.subplots(nrows, ncols, **kwargs)

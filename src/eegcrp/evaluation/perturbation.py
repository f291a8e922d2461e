"""Relevance-ordered perturbation: is a heatmap faithful to the model that produced it?

A window is cut into *units* of one of the three domains the analysis speaks about:

* ``channels``: each channel, removed by replacing it with its own mean over the window
  (``mean``) or with the average of its nearest neighbours on the scalp (``neighbours``);
* ``bands``: each frequency band, removed from every channel by zeroing its DFT bins (the
  inverse of the DFT virtual layer);
* ``time``: ``n_segments`` equal segments, each removed by holding every channel at its
  window mean.

Each unit's relevance is the heatmap's relevance in it (for bands: the DFT relevance of the
band's bins). Units are removed one after the other, most relevant first (MoRF), least
relevant first (LeRF) or in random orders, and the explained decision score is recorded
after each step. A faithful heatmap makes the score fall fast under MoRF and slowly under
LeRF: AOPC (area over the perturbation curve, the mean drop ``s_0 - s_k`` over the steps)
is large for MoRF, small (or negative) for LeRF, and the area between the two curves
(ABPC, the mean of ``s_LeRF,k - s_MoRF,k``) is positive; random orders give the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from eegcrp.relevance.spectral import dft_relevance, rfft_freqs

__all__ = ["DOMAINS", "Domain", "aopc", "make_domain", "perturbation_curves", "steps_for"]

#: Perturbation domains.
DOMAINS = ("channels", "bands", "time")


@dataclass
class Domain:
    """How to measure and remove the relevance of one kind of unit."""

    name: str
    units: list[str]
    relevance: Callable[[np.ndarray, np.ndarray], np.ndarray]
    remove: Callable[[np.ndarray, np.ndarray], np.ndarray]

    @property
    def n_units(self) -> int:
        return len(self.units)


def _neighbours(positions: np.ndarray, k: int) -> np.ndarray:
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1)[:, :k]


def make_domain(name: str, *, ch_names: list[str], sfreq: float, n_times: int,
                bands: Mapping[str, tuple[float, float]] | None = None, n_segments: int = 8,
                channel_removal: str = "mean", positions: np.ndarray | None = None,
                n_neighbours: int = 4) -> Domain:
    """A :class:`Domain` (see the module docstring)."""
    if name == "channels":
        neighbours = None
        if channel_removal == "neighbours":
            if positions is None or not np.all(np.isfinite(positions)) or len(ch_names) < 3:
                raise ValueError("channel removal 'neighbours' needs 3-D positions of every "
                                 "channel; use channel_removal 'mean'")
            neighbours = _neighbours(np.asarray(positions, np.float64),
                                     min(n_neighbours, len(ch_names) - 1))

        def channel_relevance(x: np.ndarray, heat: np.ndarray) -> np.ndarray:
            return heat.sum(axis=2)

        def channel_remove(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
            out = x.copy()
            if neighbours is None:
                fill = np.broadcast_to(x.mean(axis=2, keepdims=True), x.shape)
            else:  # the average of the (original) neighbours
                fill = x[:, neighbours].mean(axis=2)
            out[mask] = fill[mask]
            return out

        return Domain("channels", list(ch_names), channel_relevance, channel_remove)
    if name == "bands":
        if not bands:
            raise ValueError("the bands domain needs bands")
        freqs = rfft_freqs(n_times, sfreq)
        masks = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in bands.values()])

        def band_relevance(x: np.ndarray, heat: np.ndarray) -> np.ndarray:
            spec = dft_relevance(x, heat).sum(axis=1)  # (n, bins)
            return spec @ masks.T.astype(np.float64)

        def band_remove(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
            coef = np.fft.rfft(x, axis=-1)
            bins = (mask.astype(np.float64) @ masks.astype(np.float64)) > 0  # (n, bins)
            coef[bins[:, None, :].repeat(x.shape[1], axis=1)] = 0
            return np.fft.irfft(coef, n=x.shape[-1], axis=-1)

        return Domain("bands", list(bands), band_relevance, band_remove)
    if name == "time":
        edges = np.linspace(0, n_times, n_segments + 1).round().astype(int)
        seg = np.zeros((n_segments, n_times), bool)
        for k in range(n_segments):
            seg[k, edges[k]:edges[k + 1]] = True
        labels = [f"{edges[k] / sfreq:.2f}-{edges[k + 1] / sfreq:.2f} s"
                  for k in range(n_segments)]

        def time_relevance(x: np.ndarray, heat: np.ndarray) -> np.ndarray:
            return heat.sum(axis=1) @ seg.T.astype(np.float64)

        def time_remove(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
            samples = (mask.astype(np.float64) @ seg.astype(np.float64)) > 0  # (n, T)
            fill = np.broadcast_to(x.mean(axis=2, keepdims=True), x.shape)
            out = x.copy()
            full = np.broadcast_to(samples[:, None, :], x.shape)
            out[full] = fill[full]
            return out

        return Domain("time", labels, time_relevance, time_remove)
    raise ValueError(f"unknown perturbation domain {name!r}; use one of {list(DOMAINS)}")


def steps_for(n_units: int, max_steps: int) -> np.ndarray:
    """Numbers of removed units at which the score is measured (0 and ``n_units`` included)."""
    if n_units + 1 <= max_steps:
        return np.arange(n_units + 1)
    return np.unique(np.linspace(0, n_units, max_steps).round().astype(int))


def perturbation_curves(score: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                        unit_relevance: np.ndarray, domain: Domain, steps: np.ndarray,
                        orders: Mapping[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """Score after removing the first ``k`` units of each order, for every ``k`` in ``steps``.

    Parameters
    ----------
    score : callable
        Maps windows (n, C, T) to the explained score of each (n,).
    x : ndarray, shape (n, C, T)
    unit_relevance : ndarray, shape (n, U)
    domain : Domain
    steps : ndarray of int
    orders : mapping
        Name -> order of the units per window (n, U), or None for the relevance orders
        ``morf`` (descending relevance) and ``lerf`` (ascending).

    Returns
    -------
    dict
        Order name -> scores (n, len(steps)).
    """
    n = len(x)
    out = {}
    for name, order in orders.items():
        if order is None:
            key = -unit_relevance if name == "morf" else unit_relevance
            order = np.argsort(key, axis=1, kind="stable")
        curve = np.empty((n, len(steps)))
        for j, k in enumerate(steps):
            mask = np.zeros((n, domain.n_units), bool)
            np.put_along_axis(mask, order[:, :k], True, axis=1)
            curve[:, j] = score(domain.remove(x, mask) if k else x)
        out[name] = curve
    return out


def aopc(curve: np.ndarray) -> np.ndarray:
    """Area over the perturbation curve per window: mean of ``s_0 - s_k`` over ``k >= 1``."""
    return (curve[:, :1] - curve[:, 1:]).mean(axis=1)

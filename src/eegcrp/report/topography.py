"""Scalp maps that show only what the electrodes measured.

Every figure that draws a value per channel goes through :func:`draw_channels`:

* with at least :data:`SPARSE_CHANNELS` channels that have scalp positions, an MNE topomap
  interpolated only where electrodes are (``extrapolate='local'``), so a 4-channel headband
  does not paint the occiput;
* with fewer, one bar per channel (named), since interpolating between a handful of sites
  invents a scalp distribution;
* bipolar derivations (the difference of two electrodes, e.g. BCI IV 2b's C3/Cz/C4) never
  get a scalp map: their values are drawn as bars, and the caller says why.

Colour maps are colour-blind safe: ``RdBu_r`` (diverging, symmetric limits) for relevance
and differences, ``viridis`` for power.
"""

from __future__ import annotations

from typing import Any

import mne
import numpy as np

__all__ = ["SPARSE_CHANNELS", "draw_channels", "scalp_info"]

#: Below this many channels with positions, values are drawn per channel, not interpolated.
SPARSE_CHANNELS = 8


def scalp_info(channels: dict[str, Any], sfreq: float = 100.0
               ) -> tuple[mne.Info, list[int]] | None:
    """An :class:`mne.Info` of the channels with scalp positions, and their indices.

    ``channels`` is the store's channel table (``names``, ``positions``, ``bipolar``). None
    for bipolar derivations or when fewer than :data:`SPARSE_CHANNELS` channels have
    positions (draw per-channel values instead).
    """
    if channels.get("bipolar"):
        return None
    names = list(channels.get("names", []))
    positions = list(channels.get("positions") or [None] * len(names))
    keep = [k for k, pos in enumerate(positions) if pos is not None]
    if len(keep) < SPARSE_CHANNELS:
        return None
    info = mne.create_info([names[k] for k in keep], sfreq, ch_types="eeg")
    montage = mne.channels.make_dig_montage(
        ch_pos={names[k]: np.asarray(positions[k], np.float64) for k in keep},
        coord_frame="head")
    info.set_montage(montage, verbose="error")
    return info, keep


def draw_channels(ax: Any, values: np.ndarray, channels: dict[str, Any], *,
                  vlim: tuple[float, float], cmap: str = "RdBu_r") -> Any:
    """Draw one value per channel on ``ax`` (a scalp map or bars, see the module docstring).

    Returns the mappable (for a colour bar) of a scalp map, else None.
    """
    values = np.asarray(values, np.float64)
    topo = scalp_info(channels)
    if topo is not None:
        info, keep = topo
        im, _ = mne.viz.plot_topomap(np.nan_to_num(values[keep]), info, axes=ax, show=False,
                                     cmap=cmap, vlim=vlim, contours=0, sensors=True,
                                     extrapolate="local")
        return im
    names = list(channels.get("names", []))
    cm = matplotlib_cmap(cmap)
    lo, hi = vlim
    norm = (values - lo) / (hi - lo) if hi > lo else np.full_like(values, 0.5)
    ax.bar(range(len(values)), np.nan_to_num(values), color=cm(np.clip(norm, 0, 1)),
           edgecolor="0.3", linewidth=0.4)
    ax.set_xticks(range(len(values)), names, fontsize=7, rotation=90 if len(names) > 4 else 0)
    ax.set_ylim(min(lo, 0), max(hi, 0) if hi > 0 else 1)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.tick_params(axis="y", labelsize=6)
    return None


def matplotlib_cmap(name: str) -> Any:
    """A matplotlib colour map by name."""
    import matplotlib

    return matplotlib.colormaps[name]

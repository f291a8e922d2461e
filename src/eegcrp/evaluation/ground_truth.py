"""Does an explanation recover what the simulator planted? Scores against the ground truth.

The simulator (:mod:`eegcrp.data.simulate`) records, per contrast, the channels, band and
time window of every planted effect and, per artefact, its channels and band. For heatmaps
of simulated windows these functions measure

* the share of the absolute relevance on the planted channels, in the planted band (from
  the DFT relevance) and inside the effect window, each next to the share expected by
  chance (the planted fraction of channels, bins or samples);
* the precision of the top-k channels (k = number of planted channels);
* the ROC AUC of relevance as a detector of the planted channels and of the planted bins;
* for each artefact, the share of relevance on its channels and band (a confound the model
  uses shows up here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from eegcrp.relevance.spectral import dft_relevance, rfft_freqs

__all__ = ["planted", "recovery_scores"]


def planted(truth: Mapping[str, Any], contrast: int = 0) -> dict[str, Any]:
    """Union of the planted effects' channels and bands, and the effect window."""
    effects = truth["contrasts"][contrast]["effects"]
    return {
        "channels": sorted({c for e in effects for c in e["channels"]}),
        "bands": [tuple(e["band"]) for e in effects],
        "time_window": tuple(truth["contrasts"][contrast].get("time_window",
                                                              truth["time_window"])),
    }


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, score))


def recovery_scores(heat: np.ndarray, x: np.ndarray, onset: np.ndarray, ch_names: list[str],
                    sfreq: float, truth: Mapping[str, Any]) -> dict[str, float]:
    """Ground-truth recovery of heatmaps of simulated windows (see the module docstring).

    Parameters
    ----------
    heat : ndarray, shape (n, C, T)
        Heatmaps (relevance of the windows ``x``).
    x : ndarray, shape (n, C, T)
        The windows.
    onset : ndarray, shape (n,)
        Seconds from each window's trial start to its first sample.
    ch_names : list of str
    sfreq : float
    truth : mapping
        ``GroundTruth.to_dict()`` of the simulated dataset.

    Returns
    -------
    dict
        ``channel_share`` / ``channel_chance``, ``band_share`` / ``band_chance``,
        ``time_share`` / ``time_chance``, ``channel_precision_at_k``, ``channel_auc``,
        ``bin_auc``, and ``<artefact>_channel_share`` / ``_band_share`` with their chances.
    """
    target = planted(truth)
    absolute = np.abs(np.asarray(heat, np.float64))
    total = absolute.sum()
    names = list(ch_names)
    is_planted = np.array([c in target["channels"] for c in names])
    per_channel = absolute.sum(axis=(0, 2))
    k = int(is_planted.sum())
    top = np.argsort(-per_channel)[:k]
    freqs = rfft_freqs(x.shape[-1], sfreq)
    spec = np.abs(dft_relevance(x, heat)).sum(axis=(0, 1))  # |relevance| per bin
    in_band = np.zeros(len(freqs), bool)
    for lo, hi in target["bands"]:
        in_band |= (freqs >= lo) & (freqs < hi)
    times = np.asarray(onset, np.float64)[:, None] + np.arange(x.shape[-1])[None] / sfreq
    start, end = target["time_window"]
    in_window = (times >= start) & (times < end)  # (n, T)
    out = {
        "channel_share": float(per_channel[is_planted].sum() / total),
        "channel_chance": float(is_planted.mean()),
        "channel_precision_at_k": float(is_planted[top].mean()) if k else float("nan"),
        "channel_auc": _auc(per_channel, is_planted),
        "band_share": float(spec[in_band].sum() / spec.sum()),
        "band_chance": float(in_band.mean()),
        "bin_auc": _auc(spec, in_band),
        "time_share": float((absolute.sum(axis=1) * in_window).sum() / total),
        "time_chance": float(in_window.mean()),
    }
    for art in truth.get("artifacts", []):
        chans = np.array([c in art["channels"] for c in names])
        lo, hi = art["band"]
        band = (freqs >= lo) & (freqs < hi)
        out[f"{art['name']}_channel_share"] = float(per_channel[chans].sum() / total)
        out[f"{art['name']}_channel_chance"] = float(chans.mean())
        out[f"{art['name']}_band_share"] = float(spec[band].sum() / spec.sum())
        out[f"{art['name']}_band_chance"] = float(band.mean())
    return out

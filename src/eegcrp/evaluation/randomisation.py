"""Randomisation sanity checks: explanations must change when the model loses what it learned.

* **Cascading model-parameter randomisation** (Adebayo et al. 2018): the weights of the
  model's convolutions and classifier are re-drawn from the initialisation distribution one
  layer after the other, from the output down; after each step the heatmaps of the same
  windows are compared with the trained model's.
* **Shuffled labels**: a model of the same fold trained on permuted labels; its heatmaps of
  the same windows are compared with the trained model's.

Similarity is the Spearman rank correlation of each window's heatmap (channels x time,
flattened) with the trained model's heatmap of the same window, averaged over windows, and
the same for the band topographies (channel x band DFT relevance). An explanation method
that passes keeps little similarity once the model is randomised; similarities that stay
high point to a heatmap that reflects the input more than the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from eegcrp.relevance.spectral import band_sum, dft_relevance, rfft_freqs

__all__ = ["CASCADE", "cascade_models", "cascade_similarity", "similarity"]

#: Layers re-drawn by the cascade, from the output down.
CASCADE = ("classifier", "b2_conv2", "b2_conv1", "b1_conv2", "b1_conv1")


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def similarity(reference: np.ndarray, other: np.ndarray, x: np.ndarray, sfreq: float,
               bands: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Mean Spearman correlation of heatmaps and of band topographies (see module docstring).

    Parameters
    ----------
    reference, other : ndarray, shape (n, C, T)
        Heatmaps of the same windows.
    x : ndarray, shape (n, C, T)
        The windows (for the DFT relevance).
    """
    heat = np.nanmean([_rank_corr(a.ravel(), b.ravel()) for a, b in
                       zip(reference, other, strict=True)])
    freqs = rfft_freqs(x.shape[-1], sfreq)
    ref_b, _ = band_sum(dft_relevance(x, reference), freqs, bands)
    oth_b, _ = band_sum(dft_relevance(x, other), freqs, bands)
    topo = np.nanmean([_rank_corr(a.ravel(), b.ravel()) for a, b in zip(ref_b, oth_b,
                                                                          strict=True)])
    return {"heatmap_spearman": float(heat), "topography_spearman": float(topo)}


def cascade_models(model: nn.Module, seed: int,
                   layers: tuple[str, ...] = CASCADE) -> list[tuple[str, nn.Module]]:
    """The model with its layers re-drawn cumulatively, from the output down.

    Each step re-initialises one more layer's weights (Glorot uniform, as EEGNet is
    initialised) from a seeded generator; batch norms are left as trained. Returns
    ``[(layer, model after re-drawing it and every layer above), ...]``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    current = copy.deepcopy(model).eval()
    modules = dict(current.named_modules())
    out = []
    for name in layers:
        if name not in modules:
            continue
        weight = modules[name].weight
        with torch.no_grad():
            fan_out, fan_in = weight.shape[0], weight[0].numel()
            if weight.dim() > 2:
                fan_out *= int(np.prod(weight.shape[2:]))
            bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
            weight.copy_(torch.empty_like(weight).uniform_(-bound, bound, generator=gen))
        out.append((name, copy.deepcopy(current)))
    return out


def cascade_similarity(model: nn.Module, x: np.ndarray, classes: np.ndarray,
                       explain: Callable[[nn.Module], np.ndarray], sfreq: float,
                       bands: Mapping[str, tuple[float, float]], seed: int
                       ) -> list[dict[str, float | str]]:
    """Similarity after every cascade step; ``explain(model) -> heatmaps`` of ``x``."""
    reference = explain(model)
    rows: list[dict[str, float | str]] = [{"step": "trained", **similarity(
        reference, reference, x, sfreq, bands)}]
    for name, randomised in cascade_models(model, seed):
        rows.append({"step": f"-{name}", **similarity(reference, explain(randomised), x,
                                                      sfreq, bands)})
    return rows

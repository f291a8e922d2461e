"""Run Quantus' faithfulness and randomisation metrics on eegcrp's models and explanations.

Quantus (Hedström et al. 2023, JMLR 24(34)) installs beside the pinned stack without
pulling another torch (``quantus==0.6.0`` needs numpy, scipy, scikit-learn, scikit-image,
opencv and matplotlib; torch is only an extra, already here), so it is an optional extra
(``pip install eegcrp[quality]``). It expects image-like inputs ``(N, channels, H, W)``;
an EEG window ``(C, T)`` is passed as a one-channel image ``(N, 1, C, T)``:

* :class:`ImageShaped` wraps an EEGNet so that it accepts that shape;
* :func:`explain_func` gives Quantus an explanation function backed by eegcrp's attributions
  (LRP composites through :class:`eegcrp.relevance.crp.ConceptExplainer`, or the gradient
  baselines), for any model Quantus hands it (its randomisation metrics re-draw layers and
  explain again);
* :func:`region_perturbation` and :func:`model_parameter_randomisation` call the metrics.

``tests/evaluation/test_quantus.py`` checks Quantus' region perturbation against eegcrp's
own perturbation engine on the same model, windows and heatmaps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ImageShaped", "explain_func", "model_parameter_randomisation",
           "region_perturbation"]


class ImageShaped(nn.Module):
    """An EEG model taking ``(N, 1, C, T)`` (Quantus' image layout) instead of ``(N, C, T)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.squeeze(1))


def explain_func(method: str = "lrp:EpsilonPlus", init: str = "logit") -> Callable[..., Any]:
    """A Quantus ``explain_func(model, inputs, targets, **kwargs)`` backed by eegcrp."""
    from .attribution import attribute

    def explain(model: nn.Module, inputs: np.ndarray, targets: np.ndarray,
                **kwargs: Any) -> np.ndarray:
        inner = model.model if isinstance(model, ImageShaped) else model
        x = np.asarray(inputs, np.float32).squeeze(1)
        heat, _ = attribute(inner, x, np.asarray(targets, np.int64), method, init=init)
        return heat[:, None].astype(np.float32)

    return explain


def region_perturbation(model: nn.Module, x: np.ndarray, y: np.ndarray, heat: np.ndarray,
                        patch_size: int, steps: int, order: str = "morf",
                        baseline: float = 0.0) -> np.ndarray:
    """Quantus' ``RegionPerturbation``: ``s_0 - s_k`` after removing ``k`` patches.

    Patches are ``patch_size`` x ``patch_size`` blocks of the (channel, time) window, removed
    by setting them to ``baseline``, in order of the heatmap's sum over the patch. Scores are
    the target class's logits (no softmax, no normalisation of the heatmaps).

    Returns
    -------
    ndarray, shape (n, steps)
    """
    import quantus

    metric = quantus.RegionPerturbation(
        patch_size=patch_size, order=order, regions_evaluation=steps, normalise=False,
        abs=False, perturb_baseline=float(baseline), disable_warnings=True,
        display_progressbar=False)
    out = metric(model=ImageShaped(model).eval(), x_batch=np.asarray(x, np.float32)[:, None],
                 y_batch=np.asarray(y, np.int64),
                 a_batch=np.asarray(heat, np.float32)[:, None], softmax=False,
                 channel_first=True, device="cpu")
    return np.asarray(out, np.float64)


def model_parameter_randomisation(model: nn.Module, x: np.ndarray, y: np.ndarray,
                                  method: str = "lrp:EpsilonPlus", seed: int = 42
                                  ) -> dict[str, float]:
    """Quantus' ``MPRT`` (cascading, top-down): mean similarity per re-drawn layer."""
    import quantus

    metric = quantus.MPRT(layer_order="top_down", seed=seed, return_average_correlation=False,
                          disable_warnings=True, display_progressbar=False)
    scores = metric(model=ImageShaped(model).eval(), x_batch=np.asarray(x, np.float32)[:, None],
                    y_batch=np.asarray(y, np.int64), a_batch=None,
                    explain_func=explain_func(method), channel_first=True, device="cpu",
                    softmax=False)
    return {str(layer): float(np.mean(values)) for layer, values in scores.items()}

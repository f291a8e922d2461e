"""Input attributions of a trained model by several methods, on the same windows.

The explanation-quality checks compare LRP composites with two gradient baselines, all
explaining the same decision score:

* ``lrp:<composite>``: the unconditional LRP heatmap of :class:`eegcrp.relevance.crp.
  ConceptExplainer` (every filter of the concept layer, no mask) with one of
  :data:`eegcrp.relevance.rules.COMPOSITES`;
* ``gradient_x_input``: gradient of the score times the input (zennit's ``Gradient``);
* ``integrated_gradients``: zennit's ``IntegratedGradients`` from an all-zero window (the
  mean of every z-scored input) in ``n_iter`` steps.

The explained quantity follows ``explain.init``: the class's logit (``logit``) or that logit
minus the mean of the other logits (``contrast``); :func:`output_weights` gives the vector
the gradient methods pull back, :func:`decision_score` the score itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from eegcrp.errors import ExplainError

__all__ = ["METHODS", "attribute", "decision_score", "method_names", "output_weights"]

#: Gradient baselines (LRP methods are ``lrp:<composite>``).
METHODS = ("gradient_x_input", "integrated_gradients")


def method_names(composites: Sequence[str], baselines: Sequence[str] = METHODS) -> list[str]:
    """``lrp:<composite>`` for each composite, then the gradient baselines."""
    return [f"lrp:{c}" for c in composites] + list(baselines)


def output_weights(n_classes: int, classes: torch.Tensor, init: str) -> torch.Tensor:
    """The linear read-out of the logits that defines the explained score, per row."""
    rows = torch.arange(len(classes))
    if init == "logit":
        w = torch.zeros(len(classes), n_classes)
    elif init == "contrast":
        w = torch.full((len(classes), n_classes), -1.0 / max(n_classes - 1, 1))
    else:
        raise ExplainError(f"unknown init {init!r}; use 'logit' or 'contrast'")
    w[rows, classes] = 1.0
    return w


@torch.no_grad()
def decision_score(model: nn.Module, x: np.ndarray | torch.Tensor, classes: np.ndarray,
                   init: str = "contrast", batch: int = 256) -> np.ndarray:
    """The explained score ``w . logits`` of every window (see :func:`output_weights`)."""
    model.eval()
    xt = torch.as_tensor(np.asarray(x, np.float32))
    cls = torch.as_tensor(np.asarray(classes), dtype=torch.long)
    out = []
    for s in range(0, len(xt), batch):
        logits = model(xt[s:s + batch]).double()
        w = output_weights(logits.shape[1], cls[s:s + batch], init).double()
        out.append((logits * w).sum(1))
    return torch.cat(out).numpy() if out else np.zeros(0)


def attribute(model: nn.Module, x: np.ndarray, classes: np.ndarray, method: str, *,
              init: str = "logit", zero_bias: bool = True, layer: str = "b2_conv2",
              ig_steps: int = 16, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Input attributions of ``method`` for the score of each window's class.

    Parameters
    ----------
    model : nn.Module
        The trained model (eval mode; not changed).
    x : ndarray, shape (n, C, T)
        Model input windows.
    classes : ndarray of int, shape (n,)
        Class explained in each window.
    method : str
        ``lrp:<composite>``, ``gradient_x_input`` or ``integrated_gradients``.
    init : {'logit', 'contrast'}
        The explained score.

    Returns
    -------
    heat : ndarray, shape (n, C, T)
        Attributions (float64).
    start : ndarray, shape (n,)
        The score being decomposed (LRP's starting relevance), for conservation checks.
    """
    from zennit.attribution import Gradient, IntegratedGradients

    x = np.asarray(x, np.float32)
    classes = np.asarray(classes, np.int64)
    heats, starts = [], []
    if method.startswith("lrp:"):
        from eegcrp.relevance.crp import ConceptExplainer

        bounds = (float(x.min()), float(x.max())) if len(x) else (-1.0, 1.0)
        explainer = ConceptExplainer(model, layer, method[4:], zero_bias=zero_bias,
                                     input_bounds=bounds, init=init, device="cpu")
        with explainer:
            for s in range(0, len(x), batch):
                att = explainer.attribute(x[s:s + batch], classes[s:s + batch])
                heats.append(att.heatmap.double().numpy())
                w = output_weights(att.logits.shape[1], torch.as_tensor(classes[s:s + batch]),
                                   init)
                starts.append((att.logits.double() * w.double()).sum(1).numpy())
        return np.concatenate(heats), np.concatenate(starts)
    if method not in METHODS:
        raise ExplainError(f"unknown attribution method {method!r}; use lrp:<composite>, "
                           f"{', '.join(METHODS)}")
    model = model.eval()
    for s in range(0, len(x), batch):
        xb = torch.as_tensor(x[s:s + batch])
        cls = torch.as_tensor(classes[s:s + batch])

        def weights(out: torch.Tensor, cls: torch.Tensor = cls) -> torch.Tensor:
            return output_weights(out.shape[1], cls, init).to(out.dtype)

        if method == "gradient_x_input":
            with Gradient(model) as attributor:
                out, grad = attributor(xb, weights)
            heat = (grad * xb).double().numpy()
        else:
            with IntegratedGradients(model, n_iter=ig_steps) as attributor:
                out, heat_t = attributor(xb, weights)
            heat = heat_t.double().numpy()
        heats.append(heat)
        starts.append((out.detach().double() * weights(out.detach()).double()).sum(1).numpy())
    return np.concatenate(heats), np.concatenate(starts)

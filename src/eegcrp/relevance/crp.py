"""Concept Relevance Propagation (CRP) for one model and one concept layer, on zennit rules.

For a model, a class ``c`` and a filter ``f`` of a conv layer (the *concept layer*, default
``b2_conv2``, the pointwise filters of EEGNet's block 2), CRP starts LRP at the output,
propagates it down to the concept layer, keeps only filter ``f``'s relevance there and
propagates that down to the input. Per window this gives the conditional input heatmap
(channels x time), the filter's relevance at the layer (its time course and total) and the
layer's activation.

Where relevance starts (``init``)
---------------------------------
* ``logit`` (the thesis): the explained class's logit, the other logits zero.
* ``contrast``: the explained class's logit minus the mean of the other logits, i.e. the
  evidence for this class against the others. It is LRP through a virtual linear layer
  ``s = z_c - mean_{j != c} z_j`` on top of the logits (z-rule: logit ``j`` receives its
  contribution ``w_j z_j``), so the relevance entering the network is ``z_c`` at ``c`` and
  ``-z_j / (K - 1)`` at every other class. With two softmax classes only this difference
  reaches the decision, and because every rule's backward pass is linear in the relevance it
  receives, the two classes' contrast heatmaps are exact negatives of each other.

How it is batched
-----------------
The filter's relevance is masked on the gradient (= relevance under zennit's rules) of the
concept layer's output by a tensor hook that a forward hook attaches; each row of a batch
carries its own class and filter, so one forward and one backward pass serve many
(window, class, filter) conditions. :meth:`ConceptExplainer.layer_relevance` gives every
filter's relevance for every window with one backward pass per class that stops at the
concept layer (the layers below run without autograd graph).

Hooks are registered only inside a ``with`` block (or for the duration of one call), as
zennit's composites are, so no hook outlives its use::

    with ConceptExplainer(model, "b2_conv2", "EpsilonPlus") as explainer:
        lr = explainer.layer_relevance(x)
        att = explainer.attribute(x[:4], classes=[1] * 4, filters=[0, 3, 3, 7])
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from eegcrp.config.stages import EEGNET_CONV_LAYERS
from eegcrp.errors import ExplainError
from eegcrp.models import CONCEPT_LAYER, remove_thesis_renorm

from .rules import Convolution, build_composite  # rules imports zennit, or says how

__all__ = [
    "INITS",
    "Attribution",
    "ConceptExplainer",
    "LayerRelevance",
    "initial_relevance",
    "select_samples",
]

#: Where relevance starts (see the module docstring).
INITS = ("logit", "contrast")


@dataclass
class LayerRelevance:
    """Relevance at the concept layer for every window and filter.

    Attributes
    ----------
    logits : Tensor, shape (n, n_classes)
        Logits of the canonized model (equal to the model's up to rounding).
    relevance : Tensor, shape (n_explained_classes, n, n_filters, *spatial)
        Relevance at the layer's output when explaining each class; ``relevance[k, :, f]``
        is filter ``f``'s relevance (its CRP relevance, as masking happens at this layer).
    start : Tensor, shape (n_explained_classes, n)
        The relevance each class's propagation started with (its sum over the logits).
    """

    logits: torch.Tensor
    relevance: torch.Tensor
    start: torch.Tensor


@dataclass
class Attribution:
    """Conditional input heatmaps of a batch of conditions.

    Attributes
    ----------
    heatmap : Tensor, shape (n, n_channels, n_times)
        Input relevance of each row's condition.
    layer_relevance : Tensor, shape (n, n_filters, *spatial)
        Relevance at the concept layer after masking (only the row's filter is non-zero).
    logits : Tensor, shape (n, n_classes)
        Logits of the canonized model.
    """

    heatmap: torch.Tensor
    layer_relevance: torch.Tensor
    logits: torch.Tensor


def initial_relevance(logits: torch.Tensor, classes: torch.Tensor,
                      init: str = "logit") -> torch.Tensor:
    """Relevance entering the network at the logits, one explained class per row.

    Parameters
    ----------
    logits : Tensor, shape (n, n_classes)
    classes : Tensor of int, shape (n,)
    init : {'logit', 'contrast'}
        See the module docstring.
    """
    rows = torch.arange(len(logits), device=logits.device)
    if init == "logit":
        out = torch.zeros_like(logits)
        out[rows, classes] = logits[rows, classes]
        return out
    if init == "contrast":
        n_classes = logits.shape[1]
        if n_classes < 2:
            raise ExplainError("init 'contrast' needs at least two classes; use 'logit'")
        weights = torch.full_like(logits, -1.0 / (n_classes - 1))
        weights[rows, classes] = 1.0
        return weights * logits
    raise ExplainError(f"unknown init {init!r}; use one of {list(INITS)}")


class ConceptExplainer:
    """CRP for one model and one concept layer (a context manager, like zennit's composites).

    Parameters
    ----------
    model : nn.Module
        A trained EEGNet (:func:`eegcrp.models.build_model`); it is copied, never changed.
    layer : str
        Name of the conv layer whose output channels are the concepts.
    composite, first_layer_rule, zero_bias, input_bounds :
        See :func:`eegcrp.relevance.rules.build_composite`.
    init : {'logit', 'contrast'}
        Where relevance starts (see the module docstring).
    device : str | torch.device | None
        Default: the model's device.
    dtype : torch.dtype
        Precision of the computation (float32; float64 for reference checks).
    epsilon : float
        Stabiliser of the epsilon and Norm rules.

    Attributes
    ----------
    n_filters : int
        Output channels of ``layer``.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str = CONCEPT_LAYER,
        composite: str = "EpsilonAlpha2Beta1",
        first_layer_rule: str | None = None,
        zero_bias: bool = True,
        input_bounds: tuple[float, float] | None = None,
        init: str = "logit",
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        epsilon: float = 1e-6,
    ) -> None:
        if device is None:
            device = next(model.parameters()).device
        if init not in INITS:
            raise ExplainError(f"unknown init {init!r}; use one of {list(INITS)}")
        self.device = torch.device(device)
        self.dtype = dtype
        self.layer = layer
        self.composite_name = composite
        self.first_layer_rule = first_layer_rule
        self.zero_bias = zero_bias
        self.init = init
        base = copy.deepcopy(model).to(self.device, dtype).eval()
        remove_thesis_renorm(base)
        for param in base.parameters():
            param.requires_grad_(False)
        modules = dict(base.named_modules())
        if layer not in modules or not isinstance(modules[layer], Convolution):
            convs = [n for n, m in modules.items() if isinstance(m, Convolution)]
            raise ExplainError(
                f"layer {layer!r} is not a conv layer of the model; set explain.layer to one "
                f"of {convs or list(EEGNET_CONV_LAYERS)}"
            )
        self.n_filters = int(modules[layer].out_channels)
        self.model = base  # the trained model, for logits and activations
        self.lrp_model = copy.deepcopy(base)  # gets the composite's rules while registered
        self.composite = build_composite(composite, first_layer_rule, zero_bias, input_bounds,
                                         epsilon=epsilon)
        self._handles: list[Any] = []
        self._depth = 0
        self._mode: str | None = None
        self._mask: torch.Tensor | None = None
        self._captured: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ registration
    def __enter__(self) -> ConceptExplainer:
        if self._depth == 0:
            self.composite.register(self.lrp_model)
            for param in self.lrp_model.parameters():  # incl. biases the canonizer created
                param.requires_grad_(False)
            plain = dict(self.model.named_modules())[self.layer]
            lrp = dict(self.lrp_model.named_modules())[self.layer]
            self._handles = [plain.register_forward_hook(self._plain_hook),
                             lrp.register_forward_hook(self._lrp_hook)]
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            for handle in self._handles:
                handle.remove()
            self._handles = []
            self.composite.remove()

    @property
    def registered(self) -> bool:
        """Whether the rules and hooks are attached (inside a ``with`` block)."""
        return self._depth > 0

    # ------------------------------------------------------------------ hooks
    def _plain_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self._captured["activation"] = output.detach()

    def _lrp_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> Any:
        if self._mode == "leaf":
            # the graph starts here; layers below ran without autograd
            leaf = output.detach().requires_grad_(True)
            self._captured["leaf"] = leaf
            return leaf
        if self._mode == "mask" and output.requires_grad:
            mask = self._mask

            def apply(grad: torch.Tensor) -> torch.Tensor:
                if mask is not None:
                    grad = grad * mask.view(*mask.shape, *([1] * (grad.ndim - 2)))
                self._captured["layer_relevance"] = grad.detach()
                return grad

            output.register_hook(apply)
        return None

    @contextlib.contextmanager
    def _state(self, mode: str, mask: torch.Tensor | None = None) -> Iterator[None]:
        with self:
            self._mode, self._mask = mode, mask
            try:
                yield
            finally:
                self._mode, self._mask = None, None
                self._captured.pop("leaf", None)

    def _tensor(self, x: Any) -> torch.Tensor:
        # detach: never mark the caller's tensor as requiring grad
        return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x,
                               dtype=self.dtype).to(self.device).detach()

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def predict(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and concept-layer activations of the trained model (no rules).

        The activation is the layer's own output in the trained model (for ``b2_conv2``:
        before its batch norm, as in the thesis), shape (n, n_filters, *spatial).
        """
        with self:
            logits = self.model(self._tensor(x))
            return logits, self._captured.pop("activation")

    def layer_relevance(self, x: Any, classes: Sequence[int] | None = None) -> LayerRelevance:
        """Relevance of every filter at the concept layer, one backward pass per class.

        Parameters
        ----------
        x : array or tensor, shape (n, n_channels, n_times)
            Normalised windows.
        classes : sequence of int | None
            Classes to explain (default: all).
        """
        xt = self._tensor(x)
        with self._state("leaf"), torch.enable_grad():
            logits = self.lrp_model(xt)
            leaf = self._captured["leaf"]
            classes = list(range(logits.shape[1])) if classes is None else list(classes)
            out, start = [], []
            for k, c in enumerate(classes):
                target = torch.full((len(xt),), int(c), device=self.device, dtype=torch.long)
                init = initial_relevance(logits, target, self.init)
                (grad,) = torch.autograd.grad(logits, leaf, init,
                                              retain_graph=k < len(classes) - 1)
                out.append(grad)
                start.append(init.sum(1).detach())
        return LayerRelevance(logits.detach(), torch.stack(out), torch.stack(start))

    def attribute(
        self,
        x: Any,
        classes: Sequence[int] | torch.Tensor | int,
        filters: Sequence[int] | torch.Tensor | None = None,
    ) -> Attribution:
        """Conditional input heatmaps, one condition per row, in one forward/backward pass.

        Parameters
        ----------
        x : array or tensor, shape (n, n_channels, n_times)
            Normalised windows (repeat a window to explain it under several conditions).
        classes : int or sequence of int
            Class explained in each row (one int = the same for all rows).
        filters : sequence of int | None
            Concept-layer filter of each row; None = no mask (plain LRP heatmaps).
        """
        xt = self._tensor(x).requires_grad_(True)
        n = len(xt)
        cls = torch.as_tensor(classes, device=self.device, dtype=torch.long)
        if cls.ndim == 0:
            cls = cls.expand(n)
        mask = None
        if filters is not None:
            filt = torch.as_tensor(filters, device=self.device, dtype=torch.long)
            if filt.shape != (n,):
                raise ValueError(f"filters must hold one filter per row ({n}), got {filt.shape}")
            mask = torch.zeros(n, self.n_filters, device=self.device, dtype=self.dtype)
            mask[torch.arange(n, device=self.device), filt] = 1.0
        with self._state("mask", mask), torch.enable_grad():
            logits = self.lrp_model(xt)
            (heat,) = torch.autograd.grad(logits, xt, initial_relevance(logits, cls, self.init))
            layer = self._captured.pop("layer_relevance")
        return Attribution(heat.detach(), layer, logits.detach())


# --------------------------------------------------------------------------- selection
def select_samples(
    relevance: np.ndarray,
    *,
    share: float | None = 0.2,
    top_k: int | None = None,
    rank_by: str = "abs",
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Relevance maximisation: the windows that explain most of a filter's relevance.

    Parameters
    ----------
    relevance : ndarray, shape (n,)
        The filter's total relevance in each window.
    share : float | None
        Select the smallest set of top-ranked windows whose relevance reaches this share of
        the total (of ``|relevance|`` with ``rank_by='abs'``, of the positive relevance with
        ``'signed'``); the thesis used 0.2. Ignored when ``top_k`` is given.
    top_k : int | None
        Select the ``top_k`` top-ranked windows instead.
    rank_by : {'abs', 'signed'}
        Rank by ``|relevance|`` (the thesis) or by relevance, where only windows with positive
        relevance can be selected.
    candidates : ndarray of bool, shape (n,) | None
        Windows allowed (e.g. of one class, correctly classified); None = all.

    Returns
    -------
    ndarray of int
        Indices into ``relevance``, highest-ranked first (ties: lower index first). Empty
        when no candidate has relevance.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    allowed = np.ones(len(relevance), bool) if candidates is None else np.asarray(candidates, bool)
    if rank_by == "abs":
        score = np.abs(relevance)
    elif rank_by == "signed":
        score = relevance
        allowed = allowed & (relevance > 0)
    else:
        raise ValueError(f"rank_by must be 'abs' or 'signed', got {rank_by!r}")
    idx = np.flatnonzero(allowed)
    order = idx[np.argsort(-score[idx], kind="stable")]
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        return order[:top_k]
    if share is None or not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    weights = np.clip(score[order], 0, None)
    total = weights.sum()
    if not total > 0:
        return order[:0]
    cumulative = np.cumsum(weights)
    k = int(np.argmax(cumulative >= share * total * (1 - 1e-12))) + 1
    return order[:k]

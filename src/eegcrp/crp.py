"""Concept Relevance Propagation (CRP) of EEGNet fold models, built on zennit.

What is computed
----------------
For a fold model, a class ``c`` and a filter ``f`` of a conv layer (the *concept layer*,
default ``b2_conv2``, the 16 pointwise filters of block 2), CRP starts LRP at the logit of
``c`` (the other logits zero, relevance = the logit's value), propagates it down to the
concept layer, keeps only filter ``f``'s relevance there and propagates that down to the
input. Per window this gives the conditional input heatmap (channels x time), the filter's
relevance at the layer (its time course and total) and the layer's activation.

Rules, composites and canonizers come from zennit (:func:`build_composite`): composites by
name, ``EpsilonAlpha2Beta1`` (the thesis; alpha=2, beta=1 on every conv, epsilon on the
classifier), ``EpsilonPlus``, ``EpsilonPlusFlat`` and ``EpsilonGammaBox`` (``Epsilon``,
epsilon everywhere, is kept as a reference for checks); average pools use zennit's ``Norm``
and ELUs ``Pass``; batch norms and dropout get no rule; the first conv's rule can be replaced
(``first_layer_rule``). A Flat first layer shifted the spectral relevance peak of a 10 Hz
effect to 6.7 Hz in the thesis data, so no default uses one except ``EpsilonPlusFlat``,
which is defined by it.

Batch norms and biases
----------------------
Batch norms are merged into the preceding convs by :class:`ExactMergeBatchNorm`, zennit's
``SequentialMergeBatchNorm`` that in addition leaves an *exact* identity behind (zennit's
leaves ``1/sqrt(1 + eps)``). The merged convs then carry biases (the batch norm shifts), and
LRP rules that include biases in their denominators let relevance leak there (reported for a
trained EEGNet: input relevance = 0.93-1.17 x the logit). zennit 0.4.6 has no
``zero_params`` option, so ``zero_bias=True`` (the default) wraps every rule so that its
modified forward passes use a zero bias (:func:`without_bias`); the model's own forward pass
and the logit keep the biases. Relevance is then conserved through every layer up to the
rules' stabilisers (reported: 0.999-1.000 x the logit). ``zero_bias=False`` keeps
zennit's rules unchanged. The fold store records which was used and the conservation it got
(``conservation_upper``: logit -> concept layer, ``conservation_lower``: layer -> input).

Two limits remain that no implementation can remove. The alpha-beta rule (and z-plus) only
conserves relevance at neurons that receive both positive and negative contributions
(z-plus: some positive one): a neuron whose inputs all push one way passes on 2x (or -1x)
its relevance. In EEGNet this happens in the depthwise spatial conv when there are few
channels (each neuron sees one tap per channel: with 3 channels, as in BCI IV 2b, about a
quarter of the neurons) and at the edges of the depthwise temporal conv of block 2, so
``conservation_lower`` is large for few-channel data with ``EpsilonAlpha2Beta1``; the epsilon
layers above the concept layer are not affected. And with biases left out, the bias-free
part of a neuron's input can be near zero while its relevance is not, which magnifies the
stabilisers' share there.

How it is batched
-----------------
The filter's relevance is masked on the gradient (= relevance under zennit's rules) of the
concept layer's output by a tensor hook that a forward hook attaches; each row of a batch
carries its own class and filter (a batch expanded over conditions: one forward and one
backward pass for many (window, class, filter) conditions). :func:`explain_fold` works in
phases:

1. one forward pass, then per class one backward pass from the logits down to the concept
   layer only (the layers below run without autograd graph) gives every filter's relevance
   for every window;
2. relevance maximisation (:func:`select_samples`) picks each filter's windows;
3. only the selected (window, class, filter) conditions get input heatmaps, in batches of
   ``batch_size`` conditions, streamed to the fold's HDF5 file with their DFT relevance.

Because LRP is linear in the relevance entering a layer and the rows of a batch do not
interact (eval mode), this gives the same numbers as computing every heatmap of every
window, for a fraction of the work; nothing the size of a dataset's heatmaps is held in RAM.
Runs on CUDA when present (``device: auto``), else on CPU.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.core import BasicHook, Composite, Hook, stabilize
from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, Norm, Pass, WSquare, ZBox, ZPlus
from zennit.types import Activation, AvgPool, Convolution

from eegcrp.config import ExplainConfig, config_hash
from eegcrp.errors import ExplainError
from eegcrp.models import CONCEPT_LAYER, remove_thesis_renorm

logger = logging.getLogger(__name__)

__all__ = [
    "COMPOSITES",
    "EXPLAIN_FORMAT",
    "RULES",
    "Attribution",
    "ConceptExplainer",
    "ExactMergeBatchNorm",
    "ExplainError",
    "LayerRelevance",
    "build_composite",
    "explain_fold",
    "explain_hash",
    "make_rule",
    "model_hash",
    "run_explain",
    "select_samples",
    "without_bias",
]

#: Version of the explain store layout (fold files and index).
EXPLAIN_FORMAT = 1

#: Composite name -> (rule of the convs, rule of the first conv or None = the conv rule).
COMPOSITES: dict[str, tuple[str, str | None]] = {
    "EpsilonAlpha2Beta1": ("alpha2beta1", None),
    "EpsilonPlus": ("zplus", None),
    "EpsilonPlusFlat": ("zplus", "flat"),
    "EpsilonGammaBox": ("gamma", "zbox"),
    # Not offered in the config: epsilon everywhere, a reference for conservation checks.
    "Epsilon": ("epsilon", None),
}

#: Rule names accepted by :func:`make_rule` and ``first_layer_rule``.
RULES = ("epsilon", "zplus", "alpha2beta1", "gamma", "flat", "wsquare", "zbox")

# Explain-config fields that do not change results (left out of the store's hash).
_NON_RESULT_FIELDS = ("n_jobs", "backend", "dask_address", "device", "batch_size")


# --------------------------------------------------------------------------- rules
def without_bias(rule: Hook) -> Hook:
    """The same zennit rule with the bias set to zero in its modified forward passes.

    zennit 0.4.6 rules have no ``zero_params`` argument; this rebuilds a
    :class:`~zennit.core.BasicHook` whose parameter modifiers return zeros for ``bias`` and
    are unchanged otherwise. Rules without parameters (``Norm``) and plain hooks (``Pass``)
    are returned as they are.
    """
    if not isinstance(rule, BasicHook) or rule.param_keys == []:
        return rule

    def zero_bias(modifier: Any) -> Any:
        def modify(param: torch.Tensor, name: str) -> torch.Tensor:
            if name == "bias":
                return torch.zeros_like(param)
            return modifier(param, name)

        return modify

    return BasicHook(
        input_modifiers=rule.input_modifiers,
        param_modifiers=[zero_bias(m) for m in rule.param_modifiers],
        output_modifiers=rule.output_modifiers,
        gradient_mapper=rule.gradient_mapper,
        reducer=rule.reducer,
        param_keys=rule.param_keys,
        require_params=rule.require_params,
    )


def make_rule(
    name: str,
    zero_bias: bool = True,
    input_bounds: tuple[float, float] | None = None,
    epsilon: float = 1e-6,
    gamma: float = 0.25,
) -> Hook:
    """A zennit rule by name (see :data:`RULES`), optionally without biases.

    ``zbox`` needs ``input_bounds`` (lowest and highest input value).
    """
    if name == "epsilon":
        rule: Hook = Epsilon(epsilon=epsilon)
    elif name == "zplus":
        rule = ZPlus()
    elif name == "alpha2beta1":
        rule = AlphaBeta(alpha=2.0, beta=1.0)
    elif name == "gamma":
        rule = Gamma(gamma=gamma)
    elif name == "flat":
        rule = Flat()
    elif name == "wsquare":
        rule = WSquare()
    elif name == "zbox":
        if input_bounds is None:
            raise ValueError("the zbox rule needs input_bounds=(low, high) of the input")
        rule = ZBox(low=float(input_bounds[0]), high=float(input_bounds[1]))
    else:
        raise ValueError(f"unknown rule {name!r}; use one of {list(RULES)}")
    return without_bias(rule) if zero_bias else rule


def _norm_rule(epsilon: float = 1e-6) -> Hook:
    """zennit's ``Norm`` (average pools) with the stabiliser ``epsilon`` (zennit: 1e-6)."""
    if epsilon == 1e-6:
        return Norm()
    return BasicHook(
        input_modifiers=[lambda input: input],
        param_modifiers=[None],
        output_modifiers=[lambda output: output],
        gradient_mapper=lambda out_grad, outputs: out_grad / stabilize(outputs[0], epsilon),
        reducer=lambda inputs, gradients: inputs[0] * gradients[0],
        param_keys=[],
    )


class ExactMergeBatchNorm(SequentialMergeBatchNorm):
    """zennit's ``SequentialMergeBatchNorm`` leaving an exact identity batch norm behind.

    zennit sets the merged batch norm's running variance to 1, so it still divides by
    ``sqrt(1 + eps)``; here the variance becomes ``1 - eps``. Reverted on removal.
    """

    @staticmethod
    def merge_batch_norm(modules: Sequence[nn.Module], batch_norm: nn.Module) -> None:
        SequentialMergeBatchNorm.merge_batch_norm(modules, batch_norm)
        batch_norm.running_var.data = torch.full_like(
            batch_norm.running_var.data, 1.0 - batch_norm.eps
        )


class _EEGComposite(Composite):
    """Composite mapping rules by module type, with a separate rule for the first conv."""

    def __init__(self, conv_rule: Hook, first_rule: Hook | None, linear_rule: Hook,
                 canonizers: list[Any], epsilon: float = 1e-6) -> None:
        self.conv_rule = conv_rule
        self.first_rule = first_rule
        self.linear_rule = linear_rule
        self.norm_rule = _norm_rule(epsilon)
        self.pass_rule = Pass()
        super().__init__(self._map, canonizers)

    def _map(self, ctx: dict, name: str, module: nn.Module) -> Hook | None:
        if isinstance(module, (Convolution, nn.Linear)) and not ctx.get("first_seen"):
            ctx["first_seen"] = True
            if self.first_rule is not None:
                return self.first_rule
        if isinstance(module, Convolution):
            return self.conv_rule
        if isinstance(module, nn.Linear):
            return self.linear_rule
        if isinstance(module, AvgPool):
            return self.norm_rule
        if isinstance(module, Activation):
            return self.pass_rule
        return None


def build_composite(
    name: str = "EpsilonAlpha2Beta1",
    first_layer_rule: str | None = None,
    zero_bias: bool = True,
    input_bounds: tuple[float, float] | None = None,
    merge_batch_norm: bool = True,
    epsilon: float = 1e-6,
) -> Composite:
    """A zennit composite by name (see :data:`COMPOSITES`) for EEGNet.

    Parameters
    ----------
    name : str
        ``EpsilonAlpha2Beta1`` | ``EpsilonPlus`` | ``EpsilonPlusFlat`` | ``EpsilonGammaBox``.
    first_layer_rule : str | None
        Rule of the first conv (one of :data:`RULES`); None = the composite's own.
    zero_bias : bool
        Biases left out of every rule (see the module docstring).
    input_bounds : (float, float) | None
        Lowest and highest input value, for the ``zbox`` rule.
    merge_batch_norm : bool
        Merge batch norms into the preceding convs (:class:`ExactMergeBatchNorm`).
    epsilon : float
        Stabiliser of the epsilon rule and of the average pools' Norm rule (zennit's
        default 1e-6; the other rules keep zennit's fixed 1e-6).
    """
    if name not in COMPOSITES:
        raise ValueError(f"unknown composite {name!r}; use one of {list(COMPOSITES)}")
    conv, first = COMPOSITES[name]
    first = first_layer_rule or first
    kwargs = {"zero_bias": zero_bias, "input_bounds": input_bounds, "epsilon": epsilon}
    return _EEGComposite(
        conv_rule=make_rule(conv, **kwargs),
        first_rule=make_rule(first, **kwargs) if first else None,
        linear_rule=make_rule("epsilon", **kwargs),
        canonizers=[ExactMergeBatchNorm()] if merge_batch_norm else [],
        epsilon=epsilon,
    )


# --------------------------------------------------------------------------- explainer
@dataclass
class LayerRelevance:
    """Phase 1 of CRP: relevance at the concept layer for every window and filter.

    Attributes
    ----------
    logits : Tensor, shape (n, n_classes)
        Logits of the canonized model (equal to the model's up to rounding).
    relevance : Tensor, shape (n_explained_classes, n, n_filters, *spatial)
        Relevance at the layer's output when explaining each class; ``relevance[k, :, f]``
        is filter ``f``'s relevance (its CRP relevance, as masking happens at this layer).
    """

    logits: torch.Tensor
    relevance: torch.Tensor


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


class ConceptExplainer:
    """CRP for one model and one concept layer.

    Parameters
    ----------
    model : nn.Module
        A trained EEGNet (:func:`eegcrp.models.build_model`); it is copied, not changed.
    layer : str
        Name of the conv layer whose output channels are the concepts.
    composite, first_layer_rule, zero_bias, input_bounds :
        See :func:`build_composite`.
    device : str | torch.device | None
        Default: the model's device.
    dtype : torch.dtype
        Precision of the computation (float32; float64 for reference checks).
    epsilon : float
        Stabiliser of the epsilon and Norm rules (see :func:`build_composite`).

    Examples
    --------
    >>> ex = ConceptExplainer(model, "b2_conv2")
    >>> lr = ex.layer_relevance(x, classes=[0, 1])       # all filters, cheap
    >>> att = ex.attribute(x[:4], classes=[1] * 4, filters=[0, 3, 3, 7])
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str = CONCEPT_LAYER,
        composite: str = "EpsilonAlpha2Beta1",
        first_layer_rule: str | None = None,
        zero_bias: bool = True,
        input_bounds: tuple[float, float] | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        epsilon: float = 1e-6,
    ) -> None:
        if device is None:
            device = next(model.parameters()).device
        self.device = torch.device(device)
        self.dtype = dtype
        base = copy.deepcopy(model).to(self.device, dtype).eval()
        remove_thesis_renorm(base)
        for param in base.parameters():
            param.requires_grad_(False)
        modules = dict(base.named_modules())
        convs = [n for n, m in modules.items() if isinstance(m, Convolution)]
        if layer not in modules or not isinstance(modules[layer], Convolution):
            raise ValueError(
                f"layer {layer!r} is not a conv layer of the model; use one of {convs}"
            )
        self.layer = layer
        self.composite_name = composite
        self.first_layer_rule = first_layer_rule
        self.zero_bias = zero_bias
        self.model = base  # the trained model, for logits and activations
        self.lrp_model = copy.deepcopy(base)  # canonized, with zennit's rule hooks
        self.composite = build_composite(composite, first_layer_rule, zero_bias, input_bounds,
                                         epsilon=epsilon)
        self.composite.register(self.lrp_model)
        for param in self.lrp_model.parameters():  # incl. biases the canonizer created
            param.requires_grad_(False)
        self.n_filters = int(modules[layer].out_channels)
        self._mode: str | None = None
        self._mask: torch.Tensor | None = None
        self._captured: dict[str, torch.Tensor] = {}
        modules[layer].register_forward_hook(self._plain_hook)
        dict(self.lrp_model.named_modules())[layer].register_forward_hook(self._lrp_hook)

    # ------------------------------------------------------------------ hooks
    def _plain_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self._captured["activation"] = output.detach()

    def _lrp_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> Any:
        if self._mode == "leaf":
            # Phase 1: the graph starts here; layers below ran without autograd.
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

    @staticmethod
    def _init(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Initial relevance: each row's target logit, the other logits zero."""
        init = torch.zeros_like(logits)
        rows = torch.arange(len(logits), device=logits.device)
        init[rows, classes] = logits[rows, classes]
        return init

    # ------------------------------------------------------------------ API
    @torch.no_grad()
    def predict(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and concept-layer activations of the trained model (no canonizer).

        The activation is the layer's own output in the trained model (for ``b2_conv2``:
        before its batch norm, as in the thesis), shape (n, n_filters, *spatial).
        """
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
            out = []
            for k, c in enumerate(classes):
                target = torch.full((len(xt),), int(c), device=self.device, dtype=torch.long)
                (grad,) = torch.autograd.grad(
                    logits, leaf, self._init(logits, target), retain_graph=k < len(classes) - 1
                )
                out.append(grad)
        return LayerRelevance(logits.detach(), torch.stack(out))

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
            mask = torch.zeros(n, self.n_filters, device=self.device)
            mask[torch.arange(n, device=self.device), filt] = 1.0
        with self._state("mask", mask), torch.enable_grad():
            logits = self.lrp_model(xt)
            (heat,) = torch.autograd.grad(logits, xt, self._init(logits, cls))
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


# --------------------------------------------------------------------------- fold runner
def model_hash(state_dict: dict[str, torch.Tensor], length: int = 16) -> str:
    """Hex digest of a model's weights (names, shapes and values)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key].detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()[:length]


def explain_hash(config: ExplainConfig) -> str:
    """Hash of the explain settings that change results (not parallelism or device)."""
    data = {k: v for k, v in config.model_dump(mode="json").items()
            if k not in _NON_RESULT_FIELDS}
    return config_hash({"format": EXPLAIN_FORMAT, **data})


_FOLD_RE = re.compile(r"^rep(\d+)_sub-(.+)$")


def _resolve_device(device: str) -> torch.device:
    from eegcrp.training import resolve_device

    try:
        return resolve_device(device)
    except Exception as exc:  # TrainingError: the message names training.device
        raise ExplainError(
            f"explain.device is {device!r} but CUDA is not available; use 'auto' or 'cpu'"
        ) from exc


def _load_model(checkpoint_path: Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Model and metadata of a training checkpoint (via :func:`eegcrp.training.load_checkpoint`
    where that exists)."""
    try:
        from eegcrp.training import load_checkpoint
    except ImportError:  # pragma: no cover - a training module without load_checkpoint
        return _load_checkpoint_plain(checkpoint_path, device)
    return load_checkpoint(checkpoint_path, device=device)


def _load_checkpoint_plain(  # pragma: no cover - fallback, see _load_model
    checkpoint_path: Path, device: torch.device
) -> tuple[nn.Module, dict[str, Any]]:
    from eegcrp.config import ModelConfig
    from eegcrp.models import build_model

    ckpt = torch.load(checkpoint_path, map_location=device, weights_only=True)
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    model = build_model(ModelConfig.model_validate(meta["model_config"]), len(meta["ch_names"]),
                        int(meta["n_times"]), len(meta["classes"]), float(meta["sfreq"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), meta


def _normalize(x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """The training module's per-window z-score, with the checkpoint's ddof."""
    from eegcrp.training import normalize_windows

    norm = meta.get("normalization") or {}
    if norm and norm.get("method", "zscore_window") != "zscore_window":
        raise ExplainError(f"unknown input normalisation {norm} in the checkpoint; retrain")
    return normalize_windows(x, ddof=int(norm.get("ddof", 0)))


def _window_index(groups: np.ndarray) -> np.ndarray:
    """Index of each window within its subject (in ``groups`` order)."""
    out = np.zeros(len(groups), dtype=np.int64)
    seen: dict[str, int] = {}
    for i, g in enumerate(groups):
        out[i] = seen.get(g, 0)
        seen[g] = out[i] + 1
    return out


def _fold_identity(meta: dict[str, Any], path: Path) -> tuple[int, str]:
    """(repetition, held-out subject) of a checkpoint: its metadata, else its file name."""
    match = _FOLD_RE.match(path.stem)
    subject = meta.get("test_subject", meta.get("subject"))
    if subject is None and match is None:
        raise ExplainError(f"{path} names no held-out subject; retrain the fold")
    rep = meta.get("repetition", int(match.group(1)) if match else 0)
    return int(rep), str(subject if subject is not None else match.group(2))


def _fold_data(
    dataset: Any, meta: dict[str, Any], config: ExplainConfig, test_subject: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Normalised windows, labels and subjects the fold's explanations are drawn from."""
    if config.select_from == "test":
        subjects = [test_subject]
    else:
        subjects = [str(s) for s in meta.get("train_subjects", [])]
        if not subjects:
            raise ExplainError("the checkpoint lists no training subjects; retrain the fold")
    x, y, groups = dataset.get_data(subjects)
    ch_names = list(getattr(dataset, "ch_names", meta["ch_names"]))
    if ch_names != list(meta["ch_names"]) or x.shape[1:] != (
        len(meta["ch_names"]), int(meta["n_times"])
    ):
        raise ExplainError(
            f"the data ({x.shape[1]} channels x {x.shape[2]} samples) do not match the model "
            f"({len(meta['ch_names'])} x {meta['n_times']}); explain with the dataset and "
            "preprocessing the model was trained on"
        )
    classes = list(getattr(dataset, "classes", meta["classes"]))
    if classes != list(meta["classes"]):
        raise ExplainError(f"dataset classes {classes} differ from the model's {meta['classes']}")
    return _normalize(x, meta), np.asarray(y, np.int64), np.asarray(groups).astype(str), subjects


def _candidates(y: np.ndarray, pred: np.ndarray, cls: int, config: ExplainConfig) -> np.ndarray:
    """Windows that may be selected for class ``cls`` (true class, correctness)."""
    mask = (y == cls) if config.by_class else np.ones(len(y), bool)
    if config.correctness == "correct":
        mask &= pred == y
    elif config.correctness == "incorrect":
        mask &= pred != y
    return mask


def _phase1(
    explainer: ConceptExplainer, x: np.ndarray, n_classes: int, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits of the model and of the canonized model, and every filter's total relevance
    per class (n_classes, n, n_filters): one backward pass per class down to the layer."""
    n = len(x)
    logits = np.zeros((n, n_classes), np.float32)
    lrp_logits = np.zeros((n, n_classes), np.float32)
    totals = np.zeros((n_classes, n, explainer.n_filters), np.float32)
    for s in range(0, n, batch):
        xb = x[s : s + batch]
        logits[s : s + batch] = explainer.predict(xb)[0].cpu().numpy()
        lr = explainer.layer_relevance(xb)
        lrp_logits[s : s + batch] = lr.logits.cpu().numpy()
        totals[:, s : s + batch] = lr.relevance.flatten(3).sum(-1).cpu().numpy()
    return logits, lrp_logits, totals


@dataclass
class _Selection:
    """Phase 2: selected (class, filter, window) rows, sorted by class, filter and rank."""

    cls: np.ndarray
    filt: np.ndarray
    sample: np.ndarray
    rank: np.ndarray
    counts: np.ndarray  # (n_classes, n_filters)
    candidates: np.ndarray  # (n_classes, n) bool
    share: np.ndarray  # (n_classes, n_filters): share of the relevance the selection holds

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts.ravel())]).astype(np.int64)


def _select(totals: np.ndarray, y: np.ndarray, pred: np.ndarray,
            config: ExplainConfig) -> _Selection:
    n_classes, _, n_filters = totals.shape
    top_k = config.top_k if config.selection == "top_k" else None
    parts: list[tuple[int, int, np.ndarray]] = []
    share = np.zeros((n_classes, n_filters))
    candidates = np.stack([_candidates(y, pred, c, config) for c in range(n_classes)])
    for c in range(n_classes):
        for f in range(n_filters):
            r = totals[c, :, f].astype(np.float64)
            sel = select_samples(r, share=config.share, top_k=top_k, rank_by=config.rank_by,
                                 candidates=candidates[c])
            parts.append((c, f, sel))
            pool = r[candidates[c]]
            total = np.abs(pool).sum() if config.rank_by == "abs" else pool.clip(0).sum()
            share[c, f] = np.abs(r[sel]).sum() / total if total > 0 else 0.0
    return _Selection(
        cls=np.concatenate([np.full(len(sel), c) for c, _, sel in parts]).astype(np.int64),
        filt=np.concatenate([np.full(len(sel), f) for _, f, sel in parts]).astype(np.int64),
        sample=np.concatenate([sel for _, _, sel in parts]).astype(np.int64),
        rank=np.concatenate([np.arange(len(sel)) for _, _, sel in parts]).astype(np.int64),
        counts=np.array([len(sel) for _, _, sel in parts], np.int64).reshape(n_classes,
                                                                             n_filters),
        candidates=candidates,
        share=share,
    )


def _quantiles(values: np.ndarray) -> list[float]:
    """5th percentile, median and 95th percentile (NaN-free; empty -> NaNs)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan")] * 3
    return [float(v) for v in np.percentile(values, [5, 50, 95])]


def explain_fold(
    checkpoint_path: str | Path,
    dataset: Any,
    explain_config: ExplainConfig | None = None,
    out_path: str | Path | None = None,
    *,
    threads: int | None = None,
) -> dict[str, Any]:
    """CRP of one fold model, written atomically to one HDF5 file.

    Parameters
    ----------
    checkpoint_path : str | Path
        A training checkpoint (``<output_dir>/training/folds/rep{r:02d}_sub-{s}.pt``).
    dataset : EEGDataset or any object with ``get_data(subjects) -> (X, y, groups)``
        Windows in volts (normalised here the way the model was trained).
    explain_config : ExplainConfig | None
        Layer, composite, selection, bands ... (default: defaults).
    out_path : str | Path | None
        The fold file (default: ``<checkpoint stem>.h5`` next to the checkpoint).
    threads : int | None
        torch CPU threads for this fold (default: unchanged).

    Returns
    -------
    dict
        The fold's index record: repetition, subject, file, hashes, counts, conservation
        and timing.
    """
    from eegcrp.store import FoldWriter

    config = explain_config or ExplainConfig()
    checkpoint_path = Path(checkpoint_path)
    out_path = Path(out_path) if out_path is not None else checkpoint_path.with_suffix(".h5")
    start = time.perf_counter()
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(max(1, int(threads)))
    try:
        device = _resolve_device(config.device)
        model, meta = _load_model(checkpoint_path, device)
        repetition, test_subject = _fold_identity(meta, checkpoint_path)
        x, y, groups, subjects = _fold_data(dataset, meta, config, test_subject)
        if len(x) == 0:
            raise ExplainError(
                f"{checkpoint_path.name}: no windows of subject(s) {subjects} in the dataset; "
                "explain with the dataset the model was trained on"
            )
        bounds = (float(x.min()), float(x.max()))
        explainer = ConceptExplainer(
            model, config.layer, config.composite, config.first_layer_rule, config.zero_bias,
            input_bounds=bounds, device=device,
        )
        n_classes = len(meta["classes"])
        logits, lrp_logits, totals = _phase1(explainer, x, n_classes, config.batch_size)
        pred = logits.argmax(1)
        selection = _select(totals, y, pred, config)
        attrs = {
            "format": EXPLAIN_FORMAT,
            "repetition": repetition,
            "subject": test_subject,
            "checkpoint": checkpoint_path.name,
            "model_hash": model_hash(model.state_dict()),
            "training_config_hash": str(meta.get("config_hash", "")),
            "explain_hash": explain_hash(config),
            "explain_config": json.dumps(config.model_dump(mode="json")),
            "layer": config.layer,
            "n_filters": explainer.n_filters,
            "composite": config.composite,
            "first_layer_rule": config.first_layer_rule or "",
            "zero_bias": bool(config.zero_bias),
            "selection": config.selection,
            "share": float(config.share),
            "top_k": int(config.top_k),
            "rank_by": config.rank_by,
            "select_from": config.select_from,
            "by_class": bool(config.by_class),
            "correctness": config.correctness,
            "subjects": json.dumps(subjects),
            "classes": json.dumps(list(meta["classes"])),
            "ch_names": json.dumps(list(meta["ch_names"])),
            "sfreq": float(meta["sfreq"]),
            "n_times": int(meta["n_times"]),
            "bands": json.dumps({k: list(v) for k, v in config.bands.items()}),
            "short_time": bool(config.short_time),
            "input_bounds": json.dumps(list(bounds)),
            "device": str(device),
            "n_samples": len(x),
            "n_pairs": len(selection.sample),
        }
        with FoldWriter(out_path) as writer:
            writer.write_samples(subject=groups, window=_window_index(groups), y=y, pred=pred,
                                 logits=logits, filter_relevance=totals)
            heat_total = _phase3(explainer, x, selection, totals, config, attrs, writer)
            # Conservation: logit -> layer (every window and class), and layer -> input
            # (each selected heatmap against its filter's relevance).
            layer_total = totals.sum(-1).astype(np.float64)  # (n_classes, n)
            target = lrp_logits.T.astype(np.float64)  # the logit each class's relevance starts at
            pair_rel = totals[selection.cls, selection.sample, selection.filt].astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                attrs.update(
                    conservation_upper=_rel_error(layer_total, target),
                    conservation_lower=_rel_error(heat_total, pair_rel),
                    layer_over_logit=json.dumps(_quantiles(layer_total / target)),
                    input_over_layer=json.dumps(_quantiles(heat_total / pair_rel)),
                    wall_time_s=round(time.perf_counter() - start, 3),
                )
            writer.write_attrs(attrs)
    finally:
        torch.set_num_threads(old_threads)
    logger.info(
        "%s: %d windows, %d heatmaps, conservation error logit->layer %.2g, layer->input "
        "%.2g (%.1f s)", out_path.name, attrs["n_samples"], attrs["n_pairs"],
        attrs["conservation_upper"], attrs["conservation_lower"], attrs["wall_time_s"],
    )
    keys = ("repetition", "subject", "model_hash", "explain_hash", "n_samples", "n_pairs",
            "conservation_upper", "conservation_lower", "wall_time_s", "device")
    return {"name": out_path.stem, "file": out_path.name, **{k: attrs[k] for k in keys},
            "layer_over_logit": json.loads(attrs["layer_over_logit"]),
            "input_over_layer": json.loads(attrs["input_over_layer"])}


def _phase3(
    explainer: ConceptExplainer,
    x: np.ndarray,
    sel: _Selection,
    totals: np.ndarray,
    config: ExplainConfig,
    attrs: dict[str, Any],
    writer: Any,
) -> np.ndarray:
    """Conditional heatmaps of the selected windows, their DFT relevance and the summaries,
    streamed to ``writer`` chunk by chunk; returns each heatmap's total."""
    from eegcrp.spectral import dft_relevance, rfft_freqs, spectrum, stdft_relevance

    n_classes, _, n_filters = totals.shape
    n_pairs, n_channels, n_times = len(sel.sample), x.shape[1], x.shape[2]
    sfreq = float(attrs["sfreq"])
    freqs = rfft_freqs(n_times, sfreq)
    tf = None
    if config.short_time:
        _, _, tf_times, tf_freqs = stdft_relevance(np.zeros(n_times), np.zeros(n_times), sfreq,
                                                   config.short_time_window)
        tf = (tf_times, tf_freqs)
    n_layer_time = int(explainer.predict(x[:1])[1].shape[-1])
    writer.write_pairs(sel.cls, sel.filt, sel.sample, sel.rank,
                       totals[sel.cls, sel.sample, sel.filt])
    writer.create_pair_arrays(n_pairs, n_channels=n_channels, n_times=n_times,
                              n_bins=len(freqs), n_time_layer=n_layer_time,
                              tf_shape=None if tf is None else (len(tf[0]), len(tf[1])))
    grid = (n_classes, n_filters)
    sums = {
        "activation_mean": np.zeros((*grid, n_layer_time)),
        "relevance_mean": np.zeros((*grid, n_layer_time)),
        "heatmap_mean": np.zeros((*grid, n_channels, n_times)),
        "spectral_relevance_sum": np.zeros((*grid, n_channels, len(freqs))),
        "spectrum_mean": np.zeros((*grid, n_channels, len(freqs))),
        "power_mean": np.zeros((*grid, n_channels, len(freqs))),
    }
    if tf is not None:
        sums["tf_relevance_sum"] = np.zeros((*grid, n_channels, len(tf[0]), len(tf[1])))
    heat_total = np.zeros(n_pairs)
    for s in range(0, n_pairs, config.batch_size):
        rows = slice(s, min(s + config.batch_size, n_pairs))
        pc, pf, ps = sel.cls[rows], sel.filt[rows], sel.sample[rows]
        xb = x[ps]
        att = explainer.attribute(xb, pc, pf)
        act = explainer.predict(xb)[1]
        dev = att.heatmap.device
        index = (torch.arange(len(ps), device=dev), torch.as_tensor(pf, device=dev))
        # the filter's map (channels-or-1 x time at the layer): relevance summed, activation
        # averaged over the non-time axis (a singleton for the layers of block 2)
        rel_tc = att.layer_relevance[index].flatten(1, -2).sum(1).cpu().numpy()
        act_tc = act[index].flatten(1, -2).mean(1).cpu().numpy()
        heat = att.heatmap.cpu().numpy()
        chunk = {
            "heatmaps": heat,
            "spectral_relevance": dft_relevance(xb, heat),
            "spectra": spectrum(xb),
            "relevance_time": rel_tc,
            "activation_time": act_tc,
        }
        if tf is not None:
            chunk["tf_relevance"], chunk["tf_spectra"], _, _ = stdft_relevance(
                xb, heat, sfreq, config.short_time_window
            )
        heat_total[rows] = heat.astype(np.float64).sum((1, 2))
        chunk["heatmap_total"] = heat_total[rows]
        writer.write_pair_chunk(rows, chunk)
        parts = {"activation_mean": act_tc, "relevance_mean": rel_tc, "heatmap_mean": heat,
                 "spectral_relevance_sum": chunk["spectral_relevance"],
                 "spectrum_mean": chunk["spectra"], "power_mean": chunk["spectra"] ** 2}
        if tf is not None:
            parts["tf_relevance_sum"] = chunk["tf_relevance"]
        # rows are sorted by (class, filter): add up each contiguous run
        key = pc * n_filters + pf
        breaks = np.flatnonzero(np.diff(key)) + 1
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(key)], strict=True):
            for name, values in parts.items():
                sums[name][pc[a], pf[a]] += values[a:b].sum(0)
    divisor = np.where(sel.counts > 0, sel.counts, np.nan)
    for name in ("activation_mean", "relevance_mean", "heatmap_mean", "spectrum_mean",
                 "power_mean"):
        sums[name] /= divisor.reshape(*grid, *([1] * (sums[name].ndim - 2)))
    pool = [totals[c][sel.candidates[c]] for c in range(n_classes)]
    summary = {
        "n_selected": sel.counts,
        "offsets": sel.offsets,
        "n_candidates": sel.candidates.sum(1).astype(np.int64),
        "total_relevance": np.stack([p.sum(0) for p in pool]),
        "total_abs_relevance": np.stack([np.abs(p).sum(0) for p in pool]),
        "selected_share": sel.share,
        **sums,
    }
    writer.write_summary(summary, freqs=freqs, tf=tf)
    return heat_total


def _rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """Summed absolute deviation relative to the summed magnitude (0 for no data)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = np.abs(want).sum()
    return float(np.abs(got - want).sum() / scale) if scale > 0 else 0.0


# --------------------------------------------------------------------------- run
class _ArraySource:
    """Windows of all subjects in memory, with the EEGDataset accessors explain_fold uses."""

    def __init__(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, ch_names: list[str],
                 classes: list[str], sfreq: float) -> None:
        self.x, self.y, self.groups = x, y, np.asarray(groups).astype(str)
        self.ch_names, self.classes, self.sfreq = ch_names, classes, sfreq

    def get_data(self, subjects: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = [np.flatnonzero(self.groups == str(s)) for s in subjects]
        idx = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return self.x[idx], self.y[idx], self.groups[idx]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


def _fold_sort_key(name: str, subjects: list[str]) -> tuple[int, int, str]:
    match = _FOLD_RE.match(name)
    rep, sub = (int(match.group(1)), match.group(2)) if match else (0, name)
    return rep, subjects.index(sub) if sub in subjects else len(subjects), sub


def _fold_done(path: Path, ehash: str, mhash: str) -> bool:
    from eegcrp.store import read_fold_attrs

    if not path.is_file():
        return False
    try:
        attrs = read_fold_attrs(path)
    except Exception:
        return False
    return attrs.get("explain_hash") == ehash and attrs.get("model_hash") == mhash


def _run_one(path: Path, source: Any, config: ExplainConfig, out: Path,
             threads: int | None) -> dict[str, Any]:
    return explain_fold(path, source, config, out, threads=threads)


def run_explain(
    config: Any,
    dataset: Any,
    progress: bool = True,
    *,
    overwrite: bool = False,
    run_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Explain every trained fold of a study (resumable, optionally in parallel).

    Parameters
    ----------
    config : StudyConfig
        Uses ``output_dir`` (reads ``<output_dir>/training/folds/*.pt``) and ``explain``.
    dataset : EEGDataset
        The preprocessed windows the models were trained on (volts).
    progress : bool
        Show a progress bar over folds.
    overwrite : bool
        Recompute folds that are already done.
    run_dir : str | Path | None
        Where to write (default ``<output_dir>/explain``): ``index.json`` and
        ``folds/rep{r:02d}_sub-{s}.h5``.

    Returns
    -------
    dict
        The run index (also written to ``index.json``); ``computed`` and ``skipped`` list
        the folds explained by this call and the folds found done.
    """
    import joblib
    from tqdm.auto import tqdm

    from eegcrp.io import write_json_atomic
    from eegcrp.store import INDEX_NAME

    ec: ExplainConfig = getattr(config, "explain", None) or ExplainConfig()
    folds_in = Path(config.output_dir) / "training" / "folds"
    run_dir = Path(run_dir) if run_dir is not None else Path(config.output_dir) / "explain"
    out_dir = run_dir / "folds"
    subjects = [str(s) for s in dataset.subjects]
    checkpoints = sorted(
        (p for p in folds_in.glob("rep*_sub-*.pt") if p.with_suffix(".json").is_file()),
        key=lambda p: _fold_sort_key(p.stem, subjects),
    )
    if not checkpoints:
        raise ExplainError(
            f"no trained folds in {folds_in}; run `eegcrp train` with this config first"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in out_dir.glob(".tmp-*"):  # left by a killed run
        item.unlink(missing_ok=True)
    ehash = explain_hash(ec)
    index_path = run_dir / INDEX_NAME
    index: dict[str, Any] = {}
    if index_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            index = json.loads(index_path.read_text())
    folds: dict[str, Any] = dict(index.get("folds", {})) if index.get("explain_hash") == ehash \
        else {}
    index = {
        "format": EXPLAIN_FORMAT,
        "explain_hash": ehash,
        "explain": ec.model_dump(mode="json"),
        "training_dir": str(folds_in),
        "dataset": getattr(dataset, "name", ""),
        "classes": list(dataset.classes),
        "subjects": subjects,
        "ch_names": list(dataset.ch_names),
        "sfreq": float(dataset.sfreq),
        "folds": folds,
    }

    device = _resolve_device(ec.device)
    pending, skipped = [], []
    for path in checkpoints:
        out = out_dir / f"{path.stem}.h5"
        if not overwrite and out.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
            if _fold_done(out, ehash, model_hash(state)):
                skipped.append(path.stem)
                continue
        pending.append(path)
    for name in list(folds):
        if name not in skipped:
            folds.pop(name)
    logger.info("explain: %d folds, %d done, %d to compute (layer %s, composite %s, %s)",
                len(checkpoints), len(skipped), len(pending), ec.layer, ec.composite, device)

    x, y, groups = dataset.get_data()
    source = _ArraySource(x, y, groups, list(dataset.ch_names), list(dataset.classes),
                          float(dataset.sfreq))
    computed = []
    cores = _cpu_count()
    n_eff = 1 if ec.n_jobs == 1 else min(joblib.effective_n_jobs(ec.n_jobs), max(1, len(pending)))
    with tqdm(total=len(checkpoints), initial=len(skipped), desc="explain folds", unit="fold",
              disable=not progress) as bar:
        if n_eff == 1 or (device.type == "cuda" and ec.backend == "loky"):
            results: Any = (
                _run_one(p, source, ec, out_dir / f"{p.stem}.h5", None) for p in pending
            )
            context: Any = contextlib.nullcontext()
        else:
            threads = max(1, cores // n_eff)
            tasks = (joblib.delayed(_run_one)(p, source, ec, out_dir / f"{p.stem}.h5", threads)
                     for p in pending)
            context = _parallel_context(ec, n_eff, threads)
            results = None
        with context as parallel:
            if results is None:
                results = parallel(tasks)
            for record in results:
                folds[record["name"]] = record
                computed.append(record["name"])
                write_json_atomic(index_path, index)
                bar.update()
    index["folds"] = {k: folds[k] for k in sorted(folds, key=lambda k: _fold_sort_key(k, subjects))}
    write_json_atomic(index_path, index)
    return {**index, "run_dir": str(run_dir), "computed": computed, "skipped": skipped}


@contextlib.contextmanager
def _parallel_context(ec: ExplainConfig, n_jobs: int, threads: int) -> Iterator[Any]:
    """A joblib ``Parallel`` (unordered generator) for the configured backend."""
    import joblib

    ret = "generator_unordered"
    if ec.backend == "loky":
        with joblib.parallel_config(backend="loky", inner_max_num_threads=threads):
            yield joblib.Parallel(n_jobs=n_jobs, return_as=ret)
    elif ec.backend == "dask":
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise ExplainError(
                "explain.backend is 'dask' but dask.distributed is not installed; install it "
                "with pip install 'eegcrp[dask]' or use backend 'loky'"
            ) from exc
        with contextlib.ExitStack() as stack:
            if ec.dask_address:
                client = stack.enter_context(Client(ec.dask_address, set_as_default=False))
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=n_jobs, threads_per_worker=1, processes=True,
                    dashboard_address=None))
                client = stack.enter_context(Client(cluster, set_as_default=False))
            with joblib.parallel_config(backend="dask", client=client):
                yield joblib.Parallel(return_as=ret)
    else:
        try:
            from ray.util.joblib import register_ray
        except ImportError as exc:
            raise ExplainError(
                "explain.backend is 'ray' but ray is not installed; install it with pip "
                "install 'eegcrp[ray]' or use backend 'loky' or 'dask'"
            ) from exc
        register_ray()
        with joblib.parallel_config(backend="ray"):
            yield joblib.Parallel(n_jobs=n_jobs, return_as=ret)

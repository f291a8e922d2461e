"""EEGNet-8,2 as a plain, explainable :class:`torch.nn.Sequential`.

The default model (``variant: eegnet``) is EEGNet-8,2 as published by Lawhern et al. (2018,
J. Neural Eng. 15 056013, table 2), for any number of channels ``C``, samples ``T`` and
classes:

===============  ================================================  =======================
name             layer                                             output (B, ...)
===============  ================================================  =======================
``unsqueeze``    add the singleton "image" dimension               (1, C, T)
``b1_conv1``     temporal conv, F1 kernels of sfreq/2, 'same'      (F1, C, T)
``b1_bn1``       batch norm                                        (F1, C, T)
``b1_conv2``     depthwise spatial conv (C, 1), D per kernel,      (F1*D, 1, T)
                 max-norm 1 on each filter
``b1_bn2``       batch norm                                        (F1*D, 1, T)
``b1_act``       ELU                                               (F1*D, 1, T)
``b1_pool``      average pool (1, 4)                               (F1*D, 1, T//4)
``b1_drop``      dropout                                           (F1*D, 1, T//4)
``b2_conv1``     depthwise temporal conv (1, 16), 'same'           (F1*D, 1, T//4)
``b2_conv2``     pointwise conv to F2 (the layer CRP explains)     (F2, 1, T//4)
``b2_bn``        batch norm                                        (F2, 1, T//4)
``b2_act``       ELU                                               (F2, 1, T//4)
``b2_pool``      average pool (1, 8)                               (F2, 1, T//32)
``b2_drop``      dropout                                           (F2, 1, T//32)
``flatten``      flatten                                           (F2 * (T//32),)
``classifier``   linear, max-norm 0.25 on each class's weights     (n_classes,) logits
===============  ================================================  =======================

Convolutions before a batch norm carry no bias (the batch norm's shift replaces it), the
shift of ``b1_bn1`` is frozen at zero (``b1_bn2`` removes it exactly in training mode, see
:func:`freeze_redundant_shift`), weights are Glorot-uniform with zero biases as in the
published Keras model, and the outputs are logits. Batch norms use Keras' momentum (0.01 in
PyTorch's convention) but PyTorch's eps of 1e-5 instead of Keras' 1e-3: zennit 0.4.6's
``MergeBatchNorm`` leaves ``eps`` in the batch norm it turns into the identity, which then
still scales by 1/sqrt(1 + eps); with 1e-5 the merged model differs by < 1e-5 relative
(three batch norms), with 1e-3 by 0.15 %.

Why not braindecode's ``EEGNet``
--------------------------------
* It cannot be imported here: ``braindecode`` pulls in ``torchaudio``, whose import fails
  against the CPU build of torch this project pins.
* Its max-norm layers (``Conv2dWithConstraint`` / ``LinearWithConstraint``, or a
  parametrization in newer releases) re-normalise the weight inside ``forward``. That hides an
  operation from zennit: the canonizer ``SequentialMergeBatchNorm`` merges the batch norm into
  the weight, the next forward re-normalises the merged weight again, so one batch norm is
  effectively left unmerged and the input relevance of a bias-free network sums to about 1.9x
  the explained logit instead of the logit. Here the constraint is a projection applied
  *after each optimiser step* (:func:`apply_max_norm`), so ``forward`` is exactly the stack of
  named modules above and LRP/CRP conserve relevance (tested in ``tests/test_models.py``).

Shapes were checked against braindecode's description of EEGNetv4 (kernel 64 padded by 32,
separable kernel 16 padded by 8, pools 4 and 8): its padding of ``k // 2`` makes intermediate
lengths one sample longer (T + 1, then T//4 + 1) while this model uses Keras' 'same' padding as
in the paper; the flattened feature count agrees (e.g. 16 x 12 = 192 for T = 384, 16 x 4 for
T = 128, 16 x 15 for T = 500).

The thesis model (``variant: thesis``)
--------------------------------------
Reproduces the thesis' ``EEGNet_Torch`` (see ``thesis_implementation.md`` section 2) layer for
layer, defects included: first conv kernel 64 with padding 32 (T + 1 samples), depthwise
temporal kernel 16 with padding 8, **no ELU after block 2**, a bias-free classifier without
max-norm, PyTorch's default initialisation, batch norm eps 1e-3, and ``torch.renorm`` of the
spatial conv weight on *every* forward call (train and eval), implemented as the forward
pre-hook :class:`ThesisRenorm` registered on ``b1_conv2``. That hook is thesis-only: it
silently re-normalises whatever weight a canonizer merged into ``b1_conv2``, so remove it with
:func:`remove_thesis_renorm` before explaining a thesis model.
"""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from eegcrp.config import ModelConfig

logger = logging.getLogger(__name__)

# Keras' 'same' padding of even kernels pads one sample more on the right; PyTorch does the
# same but warns that it copies the input to do so. The copy is intended here.
warnings.filterwarnings(
    "ignore", message="Using padding='same' with even kernel lengths", category=UserWarning
)

__all__ = [
    "CONCEPT_LAYER",
    "ThesisRenorm",
    "Unsqueeze",
    "apply_max_norm",
    "build_model",
    "count_parameters",
    "freeze_redundant_shift",
    "max_norms",
    "remove_thesis_renorm",
]

#: Name of the layer whose output channels (filters) CRP treats as concepts.
CONCEPT_LAYER = "b2_conv2"

#: Max-norm constraints of the published EEGNet (layer name -> maximum L2 norm per filter).
_EEGNET_MAX_NORMS = {"b1_conv2": 1.0, "classifier": 0.25}

# Keras' BatchNormalization momentum (0.99 of the running mean = 0.01 in PyTorch); eps: see
# the module docstring (the thesis used Keras' 1e-3).
_BN_MOMENTUM = 0.01
_BN_EPS = 1e-5
_BN_EPS_THESIS = 1e-3


class Unsqueeze(nn.Module):
    """Insert a singleton dimension: (B, C, T) -> (B, 1, C, T) for ``dim=1``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class ThesisRenorm:
    """Forward pre-hook reproducing the thesis' max-norm: renorm the weight on every call.

    Thesis-only. ``torch.renorm(p=2, dim=0, maxnorm)`` rescales each output filter whose L2
    norm exceeds ``max_norm`` before the convolution runs, in training *and* evaluation. It
    changes the stored weight in place, exactly like the thesis' ``weight.data = renorm(...)``.
    """

    def __init__(self, max_norm: float = 1.0) -> None:
        self.max_norm = float(max_norm)

    def __call__(self, module: nn.Module, args: tuple) -> None:
        with torch.no_grad():
            module.weight.copy_(torch.renorm(module.weight, p=2, dim=0, maxnorm=self.max_norm))

    def __repr__(self) -> str:
        return f"ThesisRenorm(max_norm={self.max_norm})"


def max_norms(model: nn.Module) -> dict[str, float]:
    """Layer name -> max-norm of the model (empty for the thesis variant)."""
    return dict(getattr(model, "max_norms", {}))


@torch.no_grad()
def apply_max_norm(model: nn.Module) -> None:
    """Project the constrained weights back onto their max-norm balls (in place).

    Call after every optimiser step. Each output filter (``weight[i]``) of a constrained layer
    whose L2 norm exceeds the layer's limit is rescaled to that limit, like Keras'
    ``max_norm`` constraint. The constraints are read from ``model.max_norms``, set by
    :func:`build_model`.
    """
    modules = dict(model.named_modules())
    for name, limit in max_norms(model).items():
        weight = modules[name].weight
        norms = weight.detach().flatten(1).norm(dim=1)
        # A relative tolerance makes the projection idempotent: a filter just projected
        # (norm == limit up to rounding, which depends on the thread count) is left alone.
        over = norms > limit * (1 + 1e-6)
        if over.any():
            scale = torch.where(over, limit / norms, torch.ones_like(norms))
            weight.mul_(scale.view(-1, *([1] * (weight.dim() - 1))))


def remove_thesis_renorm(model: nn.Module) -> int:
    """Apply the thesis' renorm one last time and remove its hook; returns hooks removed.

    Needed before merging batch norms into ``b1_conv2`` of a thesis model (CRP/LRP), since
    the hook would otherwise re-normalise the merged weight.
    """
    removed = 0
    for module in model.modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, ThesisRenorm):
                hook(module, ())
                del module._forward_pre_hooks[key]
                removed += 1
    return removed


def freeze_redundant_shift(model: nn.Module) -> None:
    """Freeze ``b1_bn1.bias``, whose gradient is identically zero in training mode.

    The shift ``beta_f`` of ``b1_bn1`` adds the same constant to every channel of temporal
    filter ``f``; the bias-free, linear spatial convolution ``b1_conv2`` turns it into one
    constant per output map, and ``b1_bn2`` in training mode subtracts its batch mean, which
    removes any per-map constant. The true gradient of ``beta_f`` is therefore zero, but its
    computed gradient is floating-point noise (about 1e-9) that Adam divides by its own
    root mean square, turning noise into learning-rate-sized steps whose direction depends on
    the order of the sums (threads, device). Frozen (no gradient, no optimiser state) it stays
    at its initial zero: exact, and training no longer depends on that noise. The parameter
    stays in the state dict, so checkpoints keep their layout.
    """
    bn = getattr(model, "b1_bn1", None)
    if isinstance(bn, nn.BatchNorm2d) and bn.bias is not None:
        bn.bias.requires_grad_(False)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _pooled(n: int, variant: str, kernel: int) -> tuple[int, int]:
    """Samples after block 1 and after block 2 for an input of ``n`` samples."""
    if variant == "thesis":
        after_conv1 = n + 2 * (kernel // 2) - kernel + 1
        after_pool1 = after_conv1 // 4
        after_conv3 = after_pool1 + 2 * 8 - 16 + 1
        return after_pool1, after_conv3 // 8
    return n // 4, n // 32


def build_model(
    config: ModelConfig | None,
    n_channels: int,
    n_times: int,
    n_classes: int,
    sfreq: float,
) -> nn.Sequential:
    """Build EEGNet for inputs of shape (batch, n_channels, n_times).

    Parameters
    ----------
    config : ModelConfig | None
        Hyper-parameters; None = defaults (EEGNet-8,2).
    n_channels, n_times, n_classes : int
        Input channels, samples per window and output classes.
    sfreq : float
        Sampling rate in Hz; the first kernel spans half a second (``round(sfreq / 2)``)
        unless ``config.kernel_length`` is set.

    Returns
    -------
    nn.Sequential
        Named layers (see the module docstring) producing logits of shape (batch, n_classes).
        ``model.max_norms`` holds the constraints :func:`apply_max_norm` enforces.
    """
    from eegcrp.config import ModelConfig

    config = config or ModelConfig()
    if n_channels < 1 or n_classes < 2:
        raise ValueError(
            f"EEGNet needs at least 1 channel and 2 classes, got {n_channels} channel(s) and "
            f"{n_classes} class(es)"
        )
    thesis = config.variant == "thesis"
    if config.kernel_length is not None:
        kernel = int(config.kernel_length)
    else:
        kernel = 64 if thesis else max(1, round(sfreq / 2))
    sep_kernel = 16 if thesis else int(config.separable_kernel_length)
    f1, d, f2 = config.F1, config.D, config.F2
    n_pool1, n_out = _pooled(n_times, config.variant, kernel)
    if n_out < 1 or n_pool1 < 1:
        raise ValueError(
            f"windows of {n_times} samples are too short for EEGNet (two average pools of 4 "
            f"and 8 leave {n_out} samples); use windows of at least 32 samples "
            f"({32 / sfreq:.3g} s at {sfreq:g} Hz)"
        )

    def bn(n: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(n, momentum=_BN_MOMENTUM, eps=_BN_EPS_THESIS if thesis else _BN_EPS)

    if thesis:
        conv1 = nn.Conv2d(1, f1, (1, kernel), padding=(0, kernel // 2), bias=False)
        sep = nn.Conv2d(f1 * d, f1 * d, (1, 16), padding=(0, 8), groups=f1 * d, bias=False)
    else:
        conv1 = nn.Conv2d(1, f1, (1, kernel), padding="same", bias=False)
        sep = nn.Conv2d(
            f1 * d, f1 * d, (1, sep_kernel), padding="same", groups=f1 * d, bias=False
        )
    layers: list[tuple[str, nn.Module]] = [
        ("unsqueeze", Unsqueeze(1)),
        ("b1_conv1", conv1),
        ("b1_bn1", bn(f1)),
        ("b1_conv2", nn.Conv2d(f1, f1 * d, (n_channels, 1), groups=f1, bias=False)),
        ("b1_bn2", bn(f1 * d)),
        ("b1_act", nn.ELU()),
        ("b1_pool", nn.AvgPool2d((1, 4), stride=(1, 4))),
        ("b1_drop", nn.Dropout(config.dropout)),
        ("b2_conv1", sep),
        ("b2_conv2", nn.Conv2d(f1 * d, f2, (1, 1), bias=False)),
        ("b2_bn", bn(f2)),
    ]
    if not thesis:  # the thesis defined this ELU but never called it
        layers.append(("b2_act", nn.ELU()))
    layers += [
        ("b2_pool", nn.AvgPool2d((1, 8), stride=(1, 8))),
        ("b2_drop", nn.Dropout(config.dropout)),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Linear(f2 * n_out, n_classes, bias=not thesis)),
    ]
    model = nn.Sequential(OrderedDict(layers))

    if thesis:
        model.max_norms = {}
        model.b1_conv2.register_forward_pre_hook(ThesisRenorm(1.0))
    else:
        model.max_norms = dict(_EEGNET_MAX_NORMS)
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        apply_max_norm(model)
    freeze_redundant_shift(model)
    logger.debug(
        "built %s: %d channels x %d samples -> %d classes, %d parameters",
        config.variant, n_channels, n_times, n_classes, count_parameters(model),
    )
    return model

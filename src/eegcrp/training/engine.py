"""The fast EEGNet engine: the same model, computed in an exactly equivalent, cheaper order.

EEGNet's block 1 is a temporal convolution of every channel with F1 kernels (``b1_conv1``),
a batch norm (``b1_bn1``) and a depthwise spatial convolution (``b1_conv2``, D maps per
kernel). All three are linear or per-kernel affine maps acting on different axes, so for
output map ``j`` of kernel ``f = j // D``::

    out_j(t) = a_f * (k_f * (sum_c w_jc x_c))(t) + (beta_f - a_f * mean_f) * sum_c w_jc

with ``a_f = gamma_f / sqrt(var_f + eps)``: project the C channels on the F1*D spatial
filters first, then convolve F1*D rows in time. The cost of block 1 stops growing with C
(beyond the projection), which is most of a training step at 19 or 64 channels.

In training mode ``b1_bn1`` normalises with the batch mean and variance of ``b1_conv1``'s
output per kernel over (batch, channel, time). They follow from moments of the input
without computing that output (``n = B * C * T``, ``pl`` the left 'same' padding)::

    mean_f = k_f . m / n,    var_f = k_f' M k_f / n - mean_f ** 2
    m_i    = sum over b, c, t < T of x[t + i - pl]                (zero outside the window)
    M_ij   = sum over b, c, t < T of x[t + i - pl] * x[t + j - pl]

``M`` is the autocorrelation ``R(|i - j|)`` of the windows (lags below K, computed once per
window: :func:`window_autocorrelation`) minus the products that the zero padding cuts off at
each window's start and end (computed per batch from its first and last samples). All
moments are float64: more accurate than the reference's float32 batch statistics, whose
near-zero means cancel. Running statistics follow :class:`torch.nn.BatchNorm2d` exactly
(momentum, unbiased variance, ``num_batches_tracked``); autograd differentiates ``mean_f``
and ``var_f`` with respect to the kernels.

:class:`FastEEGNet` owns the very modules of a :func:`eegcrp.models.build_model`
Sequential (same names, same parameter objects): its ``state_dict`` is the Sequential's, an
optimiser over either trains both, and dropout draws the same masks in the same order.
Relevance (zennit, CRP, the virtual layers) always runs on the Sequential; this engine is for
training and eval-mode forwards. The ``thesis`` variant (padding K//2, T + 1 samples, a
renorm hook) does not have this form and keeps the reference modules.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from eegcrp.errors import TrainingError

logger = logging.getLogger(__name__)

__all__ = ["ENGINES", "FastEEGNet", "depthwise_conv1d", "engine_for", "time_pool",
           "window_autocorrelation"]

#: ``training.engine`` values.
ENGINES = ("fast", "reference")


def _same_padding(kernel: int) -> tuple[int, int]:
    """Left and right padding of PyTorch's ``padding='same'`` (more on the right)."""
    left = (kernel - 1) // 2
    return left, kernel - 1 - left


# --------------------------------------------------------------------------- operations
class _DepthwiseConv1d(torch.autograd.Function):
    """Depthwise conv1d with explicit padding and a backward made of two convolutions.

    PyTorch's own backward of a depthwise conv1d with a 64-tap kernel took about 15x its
    forward on this project's CPUs; here the input gradient is a convolution with the
    flipped kernel and the kernel gradient one grouped convolution of the padded input with
    the output gradient.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, left: int, right: int
                ) -> torch.Tensor:
        padded = F.pad(x, (left, right))
        ctx.save_for_backward(padded, weight)
        ctx.pads = (left, right)
        return F.conv1d(padded, weight, groups=weight.shape[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        padded, weight = ctx.saved_tensors
        left, right = ctx.pads
        rows, _, kernel = weight.shape
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv1d(F.pad(grad, (right, left)), weight.flip(-1), groups=rows)
        if ctx.needs_input_grad[1]:
            grad_w = _kernel_gradient(padded, grad, kernel).reshape(rows, 1, kernel)
        return grad_x, grad_w, None, None


def _shifted_products(a: torch.Tensor, b: torch.Tensor, lags: int) -> torch.Tensor:
    """``out[n, r, i] = sum_k a[n, k, r] * b[n, k, r + i]`` for ``i < lags``, as one batched
    matrix product and a strided view of its diagonals.

    ``a`` (N, k, S), ``b`` (N, k, S + lags - 1). Summing over the shared axis ``k`` first
    as a matrix product is far faster than forming every shifted copy of ``b``.
    """
    prod = torch.bmm(a.transpose(1, 2), b).contiguous()  # (N, S, S + lags - 1)
    n, rows, cols = prod.shape
    return prod.as_strided((n, rows, lags), (rows * cols, cols + 1, 1))


def _kernel_gradient(padded: torch.Tensor, grad: torch.Tensor, kernel: int,
                     block: int = 64) -> torch.Tensor:
    """``out[j, i] = sum_b sum_t grad[b, j, t] * padded[b, j, t + i]`` (rows, kernel).

    Time is cut into blocks of ``block`` samples; per row and block a matrix product over
    the batch gives every product of the block's gradient with the block's input span, and
    the wanted sums are its diagonals.
    """
    batch, rows, n_times = grad.shape
    block = min(block, n_times)
    n_blocks = -(-n_times // block)
    extra = n_blocks * block - n_times
    grad = F.pad(grad, (0, extra)).reshape(batch, rows, n_blocks, block)
    spans = F.pad(padded, (0, extra)).unfold(-1, block + kernel - 1, block)
    a = grad.permute(1, 2, 0, 3).reshape(rows * n_blocks, batch, block)
    b = spans.permute(1, 2, 0, 3).reshape(rows * n_blocks, batch, block + kernel - 1)
    return _shifted_products(a, b, kernel).sum(1).reshape(rows, n_blocks, kernel).sum(1)


def depthwise_conv1d(x: torch.Tensor, weight: torch.Tensor, left: int, right: int
                     ) -> torch.Tensor:
    """``conv1d(pad(x, (left, right)), weight, groups=rows)`` for ``x`` (B, rows, T) and
    ``weight`` (rows, 1, K), with the fast backward of :class:`_DepthwiseConv1d`."""
    return _DepthwiseConv1d.apply(x, weight, left, right)


def time_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """Average pooling over the last axis with kernel = stride = ``size``, as
    ``nn.AvgPool2d((1, size))`` (a trailing remainder is dropped), by reshape and sum:
    the same numbers without AvgPool's copies."""
    n = x.shape[-1] // size
    return x[..., : n * size].reshape(*x.shape[:-1], n, size).sum(-1) * (1.0 / size)


# --------------------------------------------------------------------------- moments
def window_autocorrelation(x: torch.Tensor | Any, kernel: int, chunk: int = 256
                           ) -> torch.Tensor:
    """Autocorrelation of every window summed over channels, lags 0 .. ``kernel`` - 1.

    Parameters
    ----------
    x : tensor or array (N, C, T)
        The windows exactly as the model sees them (normalised, aligned).
    kernel : int
        Length of ``b1_conv1``'s kernels.
    chunk : int
        Windows per step (bounds the float64 copy).

    Returns
    -------
    tensor (N, kernel), float64
        ``R[w, L] = sum_c sum_t x[w, c, t] * x[w, c, t + L]``: what the batch statistics of
        ``b1_conv1`` need of a window that does not depend on the fold. 8 * kernel bytes per
        window (512 B at 64 taps).
    """
    x = torch.as_tensor(x)
    out = torch.empty(len(x), kernel, dtype=torch.float64)
    n_times = x.shape[-1]
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk].detach().to("cpu", torch.float64)
        for lag in range(min(kernel, n_times)):
            out[start : start + chunk, lag] = (block[..., : n_times - lag]
                                               * block[..., lag:]).sum((1, 2))
        if kernel > n_times:
            out[start : start + chunk, n_times:] = 0.0
    return out


def batch_moments(x: torch.Tensor, kernel: int, autocorrelation: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``m``, ``M`` and ``n`` of a batch (see the module docstring), float64.

    Parameters
    ----------
    x : tensor (B, C, T)
    kernel : int
    autocorrelation : tensor (B, kernel) | None
        :func:`window_autocorrelation` of the batch's windows (computed here when None).
    """
    left, right = _same_padding(kernel)
    batch, channels, n_times = x.shape
    x64 = x.detach().to(torch.float64)
    device = x64.device
    if autocorrelation is None:
        autocorrelation = window_autocorrelation(x64, kernel)
    r = autocorrelation.to(device, torch.float64).sum(0)  # (K,)
    # m_i: the samples t + i - pl inside the window, summed: a range of the cumulative sum
    cum = F.pad(x64.sum((0, 1)).cumsum(0), (1, 0))
    taps = torch.arange(kernel, device=device)
    m = cum[(taps - left + n_times).clamp(0, n_times)] - cum[(taps - left).clamp(0, n_times)]
    # products x[u] x[u + L] (summed over b, c) that the zero padding cuts off: at the
    # start u < i - pl (so u < pr) ...
    rows = x64.reshape(1, batch * channels, n_times)
    head = rows[..., : right + kernel - 1]
    head_p = _shifted_products(head[..., :right], head, kernel)[0]  # (pr, K)
    head_c = F.pad(head_p.cumsum(0), (0, 0, 1, 0))  # [v, L] = sum over u < v
    # ... and at the end u >= i + T - pl (the last pl samples; beyond T is zero)
    tail = rows[..., n_times - left :]
    tail_p = _shifted_products(tail, F.pad(tail, (0, kernel - 1)), kernel)[0]  # (pl, K)
    tail_c = F.pad(tail_p.flip(0).cumsum(0).flip(0), (0, 0, 0, 1))  # [v, L] = over u >= v
    i, j = torch.meshgrid(taps, taps, indexing="ij")
    lag, low = (j - i).abs(), torch.minimum(i, j)
    big_m = (r[lag] - head_c[(low - left).clamp(0, right), lag]
             - tail_c[low.clamp(max=left), lag])
    return m, big_m, batch * channels * n_times


# --------------------------------------------------------------------------- the engine
class FastEEGNet(nn.Module):
    """EEGNet-8,2 forward in the fast order, sharing every module of ``model``.

    Parameters
    ----------
    model : nn.Sequential
        From :func:`eegcrp.models.build_model` (``variant: eegnet``).

    Notes
    -----
    ``forward(x, autocorrelation=None)``: ``x`` (B, C, T); ``autocorrelation`` the batch's
    rows of :func:`window_autocorrelation` (computed when None). In training mode the batch
    statistics of ``b1_bn1`` come from input moments, which carry no gradient to ``x``:
    use eval mode (running statistics) for input gradients.
    """

    def __init__(self, model: nn.Sequential) -> None:
        super().__init__()
        names = dict(model.named_children())
        expected = ("b1_conv1", "b1_bn1", "b1_conv2", "b1_bn2", "b1_act", "b1_pool", "b1_drop",
                    "b2_conv1", "b2_conv2", "b2_bn", "b2_act", "b2_pool", "b2_drop", "flatten",
                    "classifier")
        missing = [n for n in expected if n not in names]
        if missing or model.b1_conv2._forward_pre_hooks:
            raise TrainingError(
                "the fast engine computes EEGNet (variant 'eegnet') only; this model "
                f"{'lacks ' + str(missing) if missing else 'has a renorm hook (thesis)'}: set "
                "training.engine to 'reference'"
            )
        for name, module in names.items():
            self.add_module(name, module)  # the same objects: one set of parameters
        self.max_norms = getattr(model, "max_norms", {})
        conv1, conv2 = model.b1_conv1, model.b1_conv2
        self.kernel = int(conv1.kernel_size[1])
        self.depth = conv2.out_channels // conv1.out_channels
        self.pads = _same_padding(self.kernel)
        self.pads2 = _same_padding(int(model.b2_conv1.kernel_size[1]))
        if conv1.padding != "same" or model.b2_conv1.padding != "same":
            raise TrainingError("the fast engine needs 'same' padding (variant 'eegnet'); set "
                                "training.engine to 'reference'")
        if self.b1_bn1.momentum is None or not self.b1_bn1.track_running_stats:
            raise TrainingError("the fast engine needs batch norms with a momentum and "
                                "running statistics")

    def _bn1_statistics(self, x: torch.Tensor, kernels: torch.Tensor,
                        autocorrelation: torch.Tensor | None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        bn = self.b1_bn1
        if not bn.training:
            return bn.running_mean, bn.running_var
        m, big_m, n = batch_moments(x, self.kernel, autocorrelation)
        k64 = kernels.to(torch.float64)
        mean = k64 @ m / n
        var = ((k64 @ big_m) * k64).sum(1) / n - mean**2
        with torch.no_grad():  # as nn.BatchNorm2d: unbiased variance in the running value
            bn.num_batches_tracked.add_(1)
            bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * mean.to(x.dtype))
            bn.running_var.mul_(1 - bn.momentum).add_(
                bn.momentum * (var * (n / max(n - 1, 1))).to(x.dtype))
        return mean.to(x.dtype), var.to(x.dtype)

    def check_times(self, n_times: int) -> None:
        """Refuse windows shorter than twice the first kernel (the padding corrections of
        the batch statistics assume the window's start and end do not overlap)."""
        if n_times < 2 * self.kernel:
            raise TrainingError(
                f"windows of {n_times} samples are shorter than twice EEGNet's first kernel "
                f"({self.kernel} taps), which the fast engine needs; use longer windows "
                "(preprocessing.window), a shorter model.kernel_length, or training.engine "
                "'reference'"
            )

    def forward(self, x: torch.Tensor, autocorrelation: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Logits of ``x`` (B, C, T); see the class notes."""
        self.check_times(x.shape[-1])
        f1, depth = self.b1_conv1.out_channels, self.depth
        kernels = self.b1_conv1.weight.reshape(f1, self.kernel)
        spatial = self.b1_conv2.weight.reshape(f1 * depth, -1)  # (J, C)
        virtual = torch.matmul(spatial, x)  # (B, J, T): the channels projected first
        h = depthwise_conv1d(virtual, kernels.repeat_interleave(depth, 0).unsqueeze(1),
                             *self.pads)
        mean, var = self._bn1_statistics(x, kernels, autocorrelation)
        bn = self.b1_bn1
        scale = bn.weight / torch.sqrt(var + bn.eps)
        shift = (bn.bias - scale * mean).repeat_interleave(depth) * spatial.sum(1)
        h = h * scale.repeat_interleave(depth)[:, None] + shift[:, None]
        h = self.b1_act(self.b1_bn2(h.unsqueeze(2)))
        h = self.b1_drop(time_pool(h, int(self.b1_pool.kernel_size[1])))
        sep = self.b2_conv1.weight.reshape(h.shape[1], 1, -1)
        h = depthwise_conv1d(h.squeeze(2), sep, *self.pads2)
        h = torch.matmul(self.b2_conv2.weight.reshape(self.b2_conv2.out_channels, -1), h)
        h = self.b2_act(self.b2_bn(h.unsqueeze(2)))
        h = self.b2_drop(time_pool(h, int(self.b2_pool.kernel_size[1])))
        return self.classifier(self.flatten(h))


def engine_for(model: nn.Module, engine: str) -> nn.Module:
    """The module that computes ``model`` with ``engine`` ('fast' or 'reference').

    The fast engine shares ``model``'s modules (training it trains ``model``). A model it
    cannot compute exactly (the thesis variant) keeps the reference modules, said in the log.
    """
    if engine == "reference" or isinstance(model, FastEEGNet):
        return model
    if engine != "fast":
        raise TrainingError(f"unknown training.engine {engine!r}; use one of {list(ENGINES)}")
    if getattr(model.b1_conv1, "padding", None) != "same":
        logger.info("the thesis variant runs on the reference engine (the fast engine needs "
                    "EEGNet's 'same' padding)")
        return model
    return FastEEGNet(model)

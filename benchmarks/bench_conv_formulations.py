"""Does another formulation of EEGNet's long temporal convolution train faster on CPU?

    .venv/bin/python benchmarks/bench_conv_formulations.py --channels 19 --threads 1

The first layer (``b1_conv1``: F1 = 8 filters of sfreq/2 = 64 taps slid over every channel)
holds most of EEGNet's multiply-adds. This script times one training step (forward, backward,
Adam, max-norm) of the full model on random windows with that layer computed four ways, all
with the *same* parameter, and checks that outputs and gradients agree with the reference:

* ``conv2d``  the model as built: ``nn.Conv2d(1, F1, (1, K), padding='same')`` on (N, 1, C, T);
* ``conv1d``  the same correlation as ``F.conv1d`` on (N*C, 1, T), reshaped back;
* ``fft``     zero-padded correlation through ``torch.fft.rfft`` / ``irfft``;
* ``compile`` the ``conv2d`` model through ``torch.compile`` (inductor, C++ on CPU), whose
  compile time is reported separately.

Only a formulation that is faster *and* gives the same numbers (float32 rounding) is worth
putting into the training loop; the model itself must stay a plain ``nn.Conv2d`` for zennit.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from _common import random_windows_parser
from eegcrp.config import ModelConfig
from eegcrp.models import apply_max_norm, build_model
from eegcrp.training import retain_freed_memory


class _Conv1dTemporal(nn.Module):
    """``conv`` (a (1, K) Conv2d with one input plane) evaluated as a Conv1d over N*C rows."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, c, t = x.shape
        w = self.conv.weight  # (F1, 1, 1, K)
        y = F.conv1d(x.reshape(n * c, 1, t), w[:, :, 0, :], padding="same")
        return y.reshape(n, c, -1, t).transpose(1, 2)


class _FFTTemporal(nn.Module):
    """``conv`` evaluated as an FFT correlation with PyTorch's 'same' zero padding."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        w = self.conv.weight[:, 0, 0, :]  # (F1, K)
        k = w.shape[-1]
        left = (k - 1) // 2  # PyTorch 'same': total K - 1, the extra sample on the right
        xp = F.pad(x, (left, k - 1 - left))
        n_fft = t + k - 1
        spec = torch.fft.rfft(xp, n=n_fft)  # (N, 1, C, nf)
        kern = torch.fft.rfft(w, n=n_fft).conj()[None, :, None, :]  # (1, F1, 1, nf)
        return torch.fft.irfft(spec * kern, n=n_fft)[..., :t]


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
          y: torch.Tensor, reference: nn.Module) -> None:
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    apply_max_norm(reference)


def _time(model: nn.Module, reference: nn.Module, x: torch.Tensor, y: torch.Tensor,
          batch: int, repeats: int) -> tuple[float, float]:
    opt = torch.optim.Adam(reference.parameters(), lr=1e-3)
    start = time.perf_counter()
    _step(model, opt, x[:batch], y[:batch], reference)  # warm-up (compile happens here)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(x), batch):
            _step(model, opt, x[i:i + batch], y[i:i + batch], reference)
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def main() -> None:
    parser = random_windows_parser(__doc__, channels=19, threads=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["conv2d", "conv1d", "fft", "compile"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # as in train_model

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.windows, args.channels, args.times, generator=gen)
    y = torch.randint(0, 2, (args.windows,), generator=gen)
    torch.manual_seed(0)
    base = build_model(ModelConfig(), args.channels, args.times, 2, 128.0)

    # agreement with the reference layer: output and weight gradient, float32 and float64
    conv = base.b1_conv1
    for dtype in (torch.float32, torch.float64):
        ref_conv = copy.deepcopy(conv).to(dtype)
        xs = x[:16, None].to(dtype)
        ref = ref_conv(xs)
        (g_ref,) = torch.autograd.grad(ref.square().sum(), ref_conv.weight)
        for name, wrap in (("conv1d", _Conv1dTemporal), ("fft", _FFTTemporal)):
            out = wrap(ref_conv)(xs)
            (g,) = torch.autograd.grad(out.square().sum(), ref_conv.weight)
            err = (out - ref).abs().max() / ref.abs().max()
            gerr = (g - g_ref).abs().max() / g_ref.abs().max()
            print(f"{name} vs conv2d ({dtype}): relative max error output {err:.1e}, "
                  f"weight gradient {gerr:.1e}")

    rows = []
    for method in args.methods:
        model = copy.deepcopy(base)
        run = model
        if method == "conv1d":
            model.b1_conv1 = _Conv1dTemporal(model.b1_conv1)
        elif method == "fft":
            model.b1_conv1 = _FFTTemporal(model.b1_conv1)
        elif method == "compile":
            run = torch.compile(model)
        model.train()
        epoch, first = _time(run, model, x, y, args.batch_size, args.repeats)
        rows.append((method, epoch, first))
        print(f"{method:8s} {args.channels} ch x {args.times}: epoch of {args.windows} windows "
              f"{epoch:.3f} s = {args.windows / epoch:.0f} windows/s (first step {first:.2f} s)",
              flush=True)
    ref_epoch = rows[0][1]
    for method, epoch, _ in rows[1:]:
        print(f"{method}: {ref_epoch / epoch:.2f}x vs {rows[0][0]}")


if __name__ == "__main__":
    main()

"""Fast vs reference EEGNet engine: one training step and one eval-mode forward.

    cd benchmarks && ../.venv/bin/python bench_engine.py --threads 1

For each channel count, both engines train the same model (same initial weights) on the
same random batches; the two are interleaved in one process (so a busy machine slows both
alike) and the median time per step over ``--repeats`` is reported with the ratio. A step is
what ``train_model`` does per batch: forward, class-weighted loss, backward, Adam and the
max-norm projection. The fast engine's per-window autocorrelations are computed once,
before timing (as ``eegcrp train`` does once per study; their cost is reported per window).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from eegcrp.models import apply_max_norm, build_model
from eegcrp.training.engine import FastEEGNet, window_autocorrelation


def _step(net, model, optimizer, x, y, extra):
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(net(x, *extra), y)
    loss.backward()
    optimizer.step()
    apply_max_norm(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[3, 19, 64])
    parser.add_argument("--times", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch_size}, "
          f"T = {args.times}")
    print("| channels | train step reference | train step fast | ratio | eval forward "
          "reference | eval forward fast | ratio | autocorrelation per window |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for channels in args.channels:
        torch.manual_seed(0)
        ref = build_model(None, channels, args.times, 2, 128.0)
        fast_model = copy.deepcopy(ref)
        fast = FastEEGNet(fast_model)
        opt_r = torch.optim.Adam(ref.parameters(), lr=1e-3)
        opt_f = torch.optim.Adam(fast_model.parameters(), lr=1e-3)
        x = torch.randn(args.batch_size, channels, args.times)
        y = torch.randint(0, 2, (args.batch_size,))
        t0 = time.perf_counter()
        auto = window_autocorrelation(x, fast.kernel)
        auto_us = (time.perf_counter() - t0) / len(x) * 1e6
        train = {"r": [], "f": []}
        evals = {"r": [], "f": []}
        for _ in range(args.repeats + 2):
            for key, net, model, opt, extra in (("r", ref, ref, opt_r, ()),
                                                ("f", fast, fast_model, opt_f, (auto,))):
                net.train()
                t0 = time.perf_counter()
                _step(net, model, opt, x, y, extra)
                train[key].append(time.perf_counter() - t0)
                net.eval()
                with torch.no_grad():
                    t0 = time.perf_counter()
                    net(x)
                    evals[key].append(time.perf_counter() - t0)
        tr = {k: statistics.median(v[2:]) * 1e3 for k, v in train.items()}
        ev = {k: statistics.median(v[2:]) * 1e3 for k, v in evals.items()}
        print(f"| {channels} | {tr['r']:.1f} ms | {tr['f']:.1f} ms | {tr['r'] / tr['f']:.1f}x | "
              f"{ev['r']:.1f} ms | {ev['f']:.1f} ms | {ev['r'] / ev['f']:.1f}x | "
              f"{auto_us:.0f} us |")


if __name__ == "__main__":
    main()

"""eegcrp's CRP against zennit-crp 0.6.0's CondAttribution on the same model and windows.

* ``per_heatmap``: conditional heatmaps of every (window, class, filter) condition in batches
  of ``--batch`` rows: eegcrp's ``ConceptExplainer.attribute`` (hooks registered once) vs
  zennit-crp's ``CondAttribution`` (``exclude_parallel=False``, heatmap kept per channel);
* ``workflow``: what a fold needs: eegcrp's two phases (every filter's relevance at the
  layer, relevance maximisation, heatmaps of the selected windows only) vs the zennit-crp
  workflow of computing every heatmap and selecting afterwards.

Both use eegcrp's composite (zennit rules) so the arithmetic is the same; the check that the
results agree is ``tests/relevance/test_zennit_crp.py``. Needs ``pip install --no-deps
zennit-crp==0.6.0``.

Example::

    python benchmarks/bench_zennit_crp.py --channels 19 --windows 64 --batch 64 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from eegcrp.config import ModelConfig
from eegcrp.models import build_model
from eegcrp.relevance.crp import ConceptExplainer, select_samples
from eegcrp.relevance.rules import build_composite


def _model(n_channels: int, n_times: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig(), n_channels, n_times, 2, 128.0)
    with torch.no_grad():  # calibrate the batch norms like a trained model's
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
                m.reset_running_stats()
        model.train()
        model(torch.randn(64, n_channels, n_times))
    return model.eval()


def main() -> None:
    from crp.attribution import CondAttribution

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=19)
    parser.add_argument("--times", type=int, default=384)
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--composite", default="EpsilonPlus")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    class ChannelsKept(CondAttribution):
        def heatmap_modifier(self, data, on_device=None):
            return data.grad.detach()

    model = _model(args.channels, args.times)
    x = torch.randn(args.windows, args.channels, args.times)
    rows = [(i, c, f) for c in range(2) for f in range(16) for i in range(args.windows)]
    ours = ConceptExplainer(model, composite=args.composite)
    ref = ChannelsKept(copy.deepcopy(model).eval())
    composite = build_composite(args.composite)
    results = {}

    with ours:
        ours.attribute(x[:4], 0, [0, 1, 2, 3])  # warm-up
        start = time.perf_counter()
        for s in range(0, len(rows), args.batch):
            i, c, f = (np.array(v) for v in zip(*rows[s:s + args.batch], strict=True))
            ours.attribute(x[i], c, f)
        results["eegcrp per heatmap"] = time.perf_counter() - start

        start = time.perf_counter()
        lr = ours.layer_relevance(x)
        totals = lr.relevance.flatten(3).sum(-1).numpy()
        selected = [(i, c, f) for c in range(2) for f in range(16)
                    for i in select_samples(totals[c, :, f], share=0.2)]
        for s in range(0, len(selected), args.batch):
            i, c, f = (np.array(v) for v in zip(*selected[s:s + args.batch], strict=True))
            ours.attribute(x[i], c, f)
        results["eegcrp two-phase fold"] = time.perf_counter() - start

    start = time.perf_counter()
    for s in range(0, len(rows), args.batch):
        chunk = rows[s:s + args.batch]
        idx = [r[0] for r in chunk]
        conditions = [{"b2_conv2": [f], "y": [c]} for _, c, f in chunk]
        ref(x[idx].clone().requires_grad_(True), conditions, composite,
            record_layer=["b2_conv2"], exclude_parallel=False)
    results["zennit-crp per heatmap (all heatmaps)"] = time.perf_counter() - start

    n = len(rows)
    print(f"{args.windows} windows x 16 filters x 2 classes = {n} conditions, "
          f"{args.channels} ch x {args.times} samples, batch {args.batch}, "
          f"{args.threads} thread(s), composite {args.composite}, {len(selected)} heatmaps "
          "selected by the two phases\n")
    print("| computation | time (s) | conditions/s |\n|---|---:|---:|")
    for name, wall in results.items():
        print(f"| {name} | {wall:.2f} | {n / wall:.0f} |")
    ratio = results["zennit-crp per heatmap (all heatmaps)"] / results["eegcrp per heatmap"]
    fold = results["zennit-crp per heatmap (all heatmaps)"] / results["eegcrp two-phase fold"]
    print(f"\nper heatmap: eegcrp {ratio:.2f}x zennit-crp's speed; a fold's workflow "
          f"(two phases vs all heatmaps): {fold:.1f}x")


if __name__ == "__main__":
    main()

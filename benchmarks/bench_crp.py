"""Benchmark of concept relevance (eegcrp.relevance): throughput and peak memory.

Compares, per model, four ways of explaining every (window x filter x class) condition of
one held-out subject at the concept layer ``b2_conv2`` (16 filters, 2 classes):

``naive``
    The thesis' loop: for each class and filter, one forward and one backward pass over the
    windows with that single condition; every window gets a heatmap.
``batched``
    The same heatmaps, but the batch is expanded over conditions: ``--batch`` (window,
    class, filter) rows per forward/backward pass.
``two_phase``
    :func:`eegcrp.relevance.fold.explain_fold`'s algorithm without the file: one backward
    pass per class to the concept layer for every window, relevance maximisation (share 0.2
    per class and filter), then batched heatmaps of the selected windows only.
``fold``
    :func:`eegcrp.relevance.fold.explain_fold` end to end: two phases plus DFT relevance,
    spectra and the HDF5 fold file.
``conservation`` (not timed against the others)
    Sum of input relevance / logit of plain LRP heatmaps with biases zeroed and kept.

Throughput is conditions (window x filter x class) explained per second: every method
yields every condition's filter relevance, the first two also every heatmap. Each method
runs in a fresh subprocess so that its peak RSS is its own. Run::

    .venv/bin/python benchmarks/bench_crp.py            # 64 x 384 and 3 x 384 EEGNet
    .venv/bin/python benchmarks/bench_crp.py --windows 64 --threads 2

Models are random EEGNets whose batch norms are calibrated on random data (throughput does
not depend on the weights). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = {"64x384": (64, 384), "19x384": (19, 384), "3x384": (3, 384)}
METHODS = ("naive", "batched", "two_phase", "fold", "conservation")
SFREQ = 128.0


def _model(n_channels: int, n_times: int, seed: int = 0):
    import torch
    from torch import nn

    from eegcrp.models import build_model

    torch.manual_seed(seed)
    model = build_model(None, n_channels, n_times, 2, SFREQ)
    x = torch.randn(128, n_channels, n_times)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = None
                mod.reset_running_stats()
                mod.bias.normal_(0, 0.3)
        model.train()
        model(x)
        model.eval()
    return model


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(model_name: str, method: str, n_windows: int, batch: int, device: str) -> dict:
    """Run one method on one model; returns timing and memory."""
    import torch

    from eegcrp.config import ExplainConfig
    from eegcrp.relevance.crp import ConceptExplainer, select_samples
    from eegcrp.relevance.fold import FoldData, explain_fold

    n_channels, n_times = MODELS[model_name]
    model = _model(n_channels, n_times)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_windows, n_channels, n_times)).astype(np.float32)
    y = np.arange(n_windows) % 2
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    ex = ConceptExplainer(model, device=dev)
    n_f, n_cls = ex.n_filters, 2
    # warm-up (allocator, oneDNN primitives) on a small batch
    ex.attribute(x[:4], 0, [0, 1, 2, 3])
    ex.layer_relevance(x[:4])
    base_rss = _rss_mb()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    heatmaps = 0
    start = time.perf_counter()
    if method == "naive":
        for c in range(n_cls):
            for f in range(n_f):
                for s in range(0, n_windows, batch):
                    xb = x[s : s + batch]
                    att = ex.attribute(xb, c, [f] * len(xb))
                    att.heatmap.cpu().numpy()
                    heatmaps += len(xb)
    elif method == "batched":
        rows = [(i, c, f) for c in range(n_cls) for f in range(n_f) for i in range(n_windows)]
        for s in range(0, len(rows), batch):
            i, c, f = (np.array(v) for v in zip(*rows[s : s + batch], strict=True))
            att = ex.attribute(x[i], c, f)
            att.heatmap.cpu().numpy()
            heatmaps += len(i)
    elif method == "two_phase":
        totals = []
        for s in range(0, n_windows, batch):
            lr = ex.layer_relevance(x[s : s + batch])
            totals.append(lr.relevance.flatten(3).sum(-1).cpu().numpy())
        totals = np.concatenate(totals, axis=1)
        rows = []
        for c in range(n_cls):
            for f in range(n_f):
                for i in select_samples(totals[c, :, f], share=0.2, candidates=y == c):
                    rows.append((i, c, f))
        for s in range(0, len(rows), batch):
            i, c, f = (np.array(v) for v in zip(*rows[s : s + batch], strict=True))
            att = ex.attribute(x[i], c, f)
            att.heatmap.cpu().numpy()
            heatmaps += len(i)
    elif method == "fold":
        with tempfile.TemporaryDirectory() as tmp:
            n = len(x)
            data = FoldData(x, y, np.full(n, "1"), np.arange(n), np.zeros(n))
            record = explain_fold(model, data, ExplainConfig(batch_size=batch, device=str(dev)),
                                  Path(tmp) / "fold.h5", classes=["a", "b"], sfreq=SFREQ,
                                  device=dev)
            heatmaps = record["n_pairs"]
    elif method == "conservation":
        # sum of input relevance / logit of plain LRP heatmaps, biases zeroed or kept
        ratios = {}
        for zero_bias in (True, False):
            exz = ConceptExplainer(model, device=dev, zero_bias=zero_bias)
            for c in range(n_cls):
                att = exz.attribute(x[:batch], c)
                r = (att.heatmap.sum((1, 2)) / att.logits[:, c]).cpu().numpy()
                ratios.setdefault(zero_bias, []).append(r)
        heatmaps = 2 * n_cls * min(batch, n_windows)
        record = {f"ratio_{'zeroed' if k else 'kept'}": [float(np.min(v)), float(np.median(v)),
                                                        float(np.max(v))]
                  for k, v in ratios.items()}
    else:
        raise ValueError(method)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    out = {
        "model": model_name, "method": method, "windows": n_windows, "batch": batch,
        "device": str(dev), "threads": torch.get_num_threads(),
        "conditions": n_windows * n_f * n_cls, "heatmaps": heatmaps, "wall_s": wall,
        "peak_rss_mb": _rss_mb(), "base_rss_mb": base_rss,
    }
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if method in ("fold", "conservation"):
        keep = ("conservation_upper", "conservation_lower", "layer_over_logit", "ratio_zeroed",
                "ratio_kept")
        out.update({k: v for k, v in record.items() if k in keep})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--windows", type=int, default=128, help="windows of the subject")
    parser.add_argument("--batch", type=int, default=64, help="rows per backward pass")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.windows, args.batch, args.device)))
        return

    results = []
    for model_name in args.models.split(","):
        for method in args.methods.split(","):
            cmd = [sys.executable, __file__, "--worker", model_name, method,
                   "--windows", str(args.windows), "--batch", str(args.batch),
                   "--device", args.device]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"{model_name}/{method} failed")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(res)
            print(f"  {model_name:7s} {method:9s} {res['wall_s']:8.2f} s", file=sys.stderr)

    print(f"\nCRP benchmark: {args.windows} windows x 16 filters x 2 classes per model, "
          f"batch {args.batch}, device {results[0]['device']}, "
          f"{results[0]['threads']} torch thread(s)\n")
    print("| model | method | heatmaps | time (s) | conditions/s | vs naive | peak RSS (MB) "
          "| RSS above start (MB) |" + (" peak CUDA (MB) |" if "peak_cuda_mb" in results[0]
                                       else ""))
    print("|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if "peak_cuda_mb" in results[0]
                                                      else ""))
    naive = {r["model"]: r["wall_s"] for r in results if r["method"] == "naive"}
    extra = [r for r in results if r["method"] in ("fold", "conservation")]
    results = [r for r in results if r["method"] != "conservation"]
    for r in results:
        ratio = naive.get(r["model"], float("nan")) / r["wall_s"]
        line = (f"| {r['model']} | {r['method']} | {r['heatmaps']} | {r['wall_s']:.2f} | "
                f"{r['conditions'] / r['wall_s']:.0f} | {ratio:.1f}x | {r['peak_rss_mb']:.0f} | "
                f"{r['peak_rss_mb'] - r['base_rss_mb']:.0f} |")
        if "peak_cuda_mb" in r:
            line += f" {r['peak_cuda_mb']:.0f} |"
        print(line)
    if extra:
        print("\nConservation (default composite EpsilonAlpha2Beta1):\n")
        for r in extra:
            if r["method"] == "fold":
                print(f"- {r['model']} fold: relative error logit -> layer "
                      f"{r['conservation_upper']:.2e}, layer -> input (selected heatmaps) "
                      f"{r['conservation_lower']:.2e}")
            else:
                for key, label in (("ratio_zeroed", "biases zeroed"),
                                   ("ratio_kept", "biases kept")):
                    lo, med, hi = r[key]
                    print(f"- {r['model']} sum of input relevance / logit, {label}: "
                          f"{lo:.4f} .. {hi:.4f} (median {med:.4f})")


if __name__ == "__main__":
    main()

"""Benchmark of the concepts stage's analysis (eegcrp.concepts): wall time and peak memory.

A synthetic in-memory explain store (an ``xarray.Dataset`` shaped like
``RelevanceRun.to_dataset()``, float32 like the fold files) of ``--subjects`` held-out
subjects x ``--repetitions`` x 16 filters x 2 classes (default 50 x 10: 16,000 filters), 19
channels, 96 layer samples and 193 DFT bins (3-s windows at 128 Hz). Every filter belongs
to one of ``--concepts`` planted concepts, assigned at random per model (so the filter
index means nothing), with random gain, offset and sign of its activation.

Cases (each in a fresh subprocess, so that its peak RSS is its own):

``default``
    :func:`eegcrp.concepts.compute_concepts` with the default config (activation_mean
    descriptor, UMAP cosine with n_neighbors 'auto', HDBSCAN): descriptors, 2 classes x
    (pooled + 10 repetitions) embeddings and clusterings, matching and stability,
    per-cluster summaries, model agreement; twice in one process: "cold" (first call,
    including the numba kernels numba does not cache on disk) and warm.
``thesis``
    The thesis' setting, as the thesis ran it: one UMAP per class x repetition with
    n_neighbors = all points (799), min_dist 0, then DBSCAN (eps 0.5, min_samples 10).
``thesis_pooled``
    n_neighbors = all on the pooled 8,000 filters of one class (``--pooled-timeout``).

Run (1 thread each; state the machine's load)::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_concepts.py

Prints a markdown table: wall time, peak RSS, clusters found, adjusted Rand index of the
pooled clustering against the planted concepts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def synthetic_store(n_subjects: int, n_reps: int, n_filters: int = 16, n_channels: int = 19,
                    n_layer_time: int = 96, n_freq: int = 193, n_concepts: int = 6,
                    noise: float = 0.3, seed: int = 0):
    """The synthetic dataset and the planted concept of every (fold, class, filter)."""
    import xarray as xr

    from eegcrp.config import DEFAULT_BANDS

    rng = np.random.default_rng(seed)
    n_folds, n_classes = n_subjects * n_reps, 2
    t = np.linspace(0, 1, n_layer_time, dtype=np.float32)
    act_t = np.stack([np.sin(2 * np.pi * (k % 3 + 1) * t + k) for k in range(n_concepts)])
    rel_t = 0.3 + np.clip(act_t, 0, None)
    spec_t = (rng.gamma(1.0, 1.0, (n_concepts, n_channels, n_freq)) *
              rng.choice([-1.0, 1.0], (n_concepts, n_channels, n_freq))).astype(np.float32)
    pow_t = (rng.gamma(2.0, 1.0, (n_concepts, n_channels, n_freq))
             / (1 + np.arange(n_freq))).astype(np.float32)
    shape = (n_folds, n_classes, n_filters)
    concept = rng.integers(0, n_concepts, shape)
    n_sel = rng.integers(5, 40, shape)
    act = np.empty((*shape, n_layer_time), np.float32)
    rel = np.empty_like(act)
    spec = np.empty((*shape, n_channels, n_freq), np.float32)
    power = np.empty_like(spec)
    for i in range(n_folds):  # fold by fold: temporaries stay small
        k, sub = concept[i], shape[1:]

        def noisy(base: np.ndarray) -> np.ndarray:
            return base + noise * rng.standard_normal(base.shape, dtype=np.float32)

        gain = rng.uniform(0.5, 3, sub).astype(np.float32)[..., None]
        sign = rng.choice([-1.0, 1.0], sub).astype(np.float32)[..., None]
        act[i] = sign * gain * noisy(act_t[k]) + rng.normal(0, 2, sub)[..., None]
        rel[i] = rng.uniform(0.2, 2, sub)[..., None] * noisy(rel_t[k])
        spec[i] = (n_sel[i] * rng.uniform(0.2, 2, sub))[..., None, None] * noisy(spec_t[k])
        power[i] = pow_t[k] * np.exp(0.2 * rng.standard_normal(
            (*sub, n_channels, n_freq), dtype=np.float32))
    reps = np.repeat(np.arange(n_reps), n_subjects)
    subjects = [f"S{s + 1:02d}" for s in range(n_subjects)] * n_reps
    dims = ("fold", "class", "filter")
    pos = rng.standard_normal((n_channels, 3))
    ds = xr.Dataset(
        {"n_selected": (dims, n_sel), "total_relevance": (dims, rel.sum(-1) * n_sel),
         "activation_mean": ((*dims, "layer_time"), act),
         "relevance_mean": ((*dims, "layer_time"), rel),
         "spectral_relevance_sum": ((*dims, "channel", "freq"), spec),
         "power_mean": ((*dims, "channel", "freq"), power)},
        coords={"fold": [f"rep{r:02d}_sub-{s}" for r, s in zip(reps, subjects, strict=True)],
                "repetition": ("fold", reps), "subject": ("fold", subjects),
                "class": ["a", "b"], "filter": np.arange(n_filters),
                "channel": [f"E{k}" for k in range(n_channels)], "layer_time": t,
                "freq": np.linspace(0, 64, n_freq),
                "ch_pos": (("channel", "xyz"), 0.09 * pos / np.linalg.norm(pos, axis=1,
                                                                          keepdims=True)),
                "xyz": ["x", "y", "z"]},
        attrs={"layer": "b2_conv2", "bands": json.dumps({k: list(v) for k, v in
                                                         DEFAULT_BANDS.items()}),
               "bipolar": 0},
    )
    return ds, concept


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _case(args: argparse.Namespace) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from eegcrp.concepts import ConceptClusterer, compute_concepts, filter_descriptors
    from eegcrp.config import ConceptsConfig

    ds, concept = synthetic_store(args.subjects, args.repetitions)
    out: dict = {"case": args.case, "filters": int(concept.size), "build_mb": _peak_mb()}
    truth = concept.transpose(1, 0, 2).reshape(2, -1)  # class, unit
    reps = ds["repetition"].values.repeat(ds.sizes["filter"])
    if args.case != "default":  # numba compiles UMAP's kernels once per process: untimed
        ConceptClusterer(random_state=0).fit(np.random.default_rng(0).standard_normal((60, 8)))
    if args.case == "default":
        t0 = time.perf_counter()
        result = compute_concepts(ds, ConceptsConfig(seed=0))
        out["cold_s"] = time.perf_counter() - t0  # incl. numba kernels not cached on disk
        out["cold_timings"] = result.summary["timings"]
        t0 = time.perf_counter()
        result = compute_concepts(ds, ConceptsConfig(seed=0))
        out["total_s"] = time.perf_counter() - t0
        out["timings"] = result.summary["timings"]
        out["n_neighbors"] = {c: s["n_neighbors"] for c, s in result.summary["classes"].items()}
        f = result.filters
        out["clusters"] = {c: s["clusters"] for c, s in result.summary["classes"].items()}
        out["stable"] = {c: s["stable"] for c, s in result.summary["classes"].items()}
        out["ari"] = [round(adjusted_rand_score(truth[k], f[f["class"] == c]["cluster_pooled"]),
                            3) for k, c in enumerate(("a", "b"))]
        stab = result.stability[result.stability["scope"] != "pooled"]
        out["ari_rep_vs_pooled"] = round(float(stab["ari_vs_pooled"].mean()), 3)
    elif args.case == "thesis":
        d = filter_descriptors(ds)
        t0 = time.perf_counter()
        aris = []
        for c in range(2):
            for r in range(args.repetitions):
                rows = np.flatnonzero(reps == r)
                fit = ConceptClusterer(n_neighbors="all", clustering="dbscan", eps=0.5,
                                       min_samples=10, random_state=0).fit(d.values[c, rows])
                aris.append(adjusted_rand_score(truth[c, rows], fit.labels_))
        out["total_s"] = time.perf_counter() - t0
        out["embeddings"] = 2 * args.repetitions
        out["n_neighbors"] = fit.n_neighbors_
        out["ari"] = [round(float(np.mean(aris)), 3)]
    else:  # thesis_pooled
        d = filter_descriptors(ds)
        t0 = time.perf_counter()
        fit = ConceptClusterer(n_neighbors="all", clustering="dbscan", eps=0.5,
                               min_samples=10, random_state=0).fit(d.values[0])
        out["total_s"] = time.perf_counter() - t0
        out["n_neighbors"] = fit.n_neighbors_
        out["ari"] = [round(adjusted_rand_score(truth[0], fit.labels_), 3)]
    out["peak_mb"] = _peak_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subjects", type=int, default=50)
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--cases", default="default,thesis,thesis_pooled")
    parser.add_argument("--pooled-timeout", type=float, default=600.0,
                        help="seconds before the thesis_pooled case is stopped")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_case(args)))
        return
    print(f"load average before: {os.getloadavg()}", flush=True)
    rows = []
    for case in args.cases.split(","):
        cmd = [sys.executable, __file__, "--case", case, "--subjects", str(args.subjects),
               "--repetitions", str(args.repetitions)]
        timeout = args.pooled_timeout if case == "thesis_pooled" else None
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                  timeout=timeout)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        except subprocess.TimeoutExpired:
            rows.append({"case": case, "total_s": f"> {timeout:.0f} (stopped)"})
        print(json.dumps(rows[-1]), flush=True)
    print(f"load average after: {os.getloadavg()}")
    print("\n| case | filters | wall time (s) | peak RSS (MB) | clusters | ARI vs planted |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        total = r["total_s"] if isinstance(r["total_s"], str) else f"{r['total_s']:.1f}"
        print(f"| {r['case']} | {r.get('filters', '')} | {total} | "
              f"{r.get('peak_mb', float('nan')):.0f} | {r.get('clusters', '')} | "
              f"{r.get('ari', '')} |")


if __name__ == "__main__":
    main()

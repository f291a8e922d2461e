"""LOSO accuracy of EEGNet (one or more training variants) against non-deep baselines.

Trains every variant with eegcrp's own stages (``prepare`` + ``train``, manifests and all)
into ``<out>/<variant>/`` and scores non-deep baselines on exactly the same leave-one-subject-
out folds of the same prepared windows (``logbp+lr`` and ``ts+lr`` of
:mod:`eegcrp.training.baselines`, which the ``decoding`` stage scores in every study).

Prints per-subject tables (mean +- sd over repetitions), mean +- sd over subjects x
repetitions, pooled scores per repetition, balanced accuracy and ROC AUC, and the one-sided
Wilcoxon signed-rank test of the per-subject means against chance; writes everything to
``<out>/accuracy.json``.

Example::

    python benchmarks/accuracy.py configs/bciciv2b.yaml --out /tmp/acc/bci --repetitions 3 \\
        --variant default: --variant aligned:training.alignment=euclidean
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from eegcrp.config import load_config
from eegcrp.config.decoding import BASELINES
from eegcrp.stages import require, run_stage
from eegcrp.stages.prepare import load_prepared
from eegcrp.stats import fold_metrics, pooled_metrics
from eegcrp.training.baselines import baseline_features


def _variant(text: str) -> tuple[str, list[str]]:
    name, _, sets = text.partition(":")
    return name, [s for s in sets.split(",") if s]


def baseline_folds(features: np.ndarray, y: np.ndarray, groups: np.ndarray, name: str
                   ) -> list[dict[str, Any]]:
    """Leave-one-subject-out logistic regression on ``features`` (fold records)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = []
    for test in dict.fromkeys(groups.tolist()):
        tr, te = groups != test, groups == test
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000,
                                                                    class_weight="balanced"))
        model.fit(features[tr], y[tr])
        proba = model.predict_proba(features[te])
        scores = fold_metrics(y[te], proba)
        scores.pop("confusion_matrix")
        out.append({"variant": name, "repetition": 0, "test_subject": test, **scores,
                    "predictions": {"y_true": y[te].tolist(), "proba": proba.tolist()}})
    return out


def summarise(folds: list[dict[str, Any]], n_classes: int) -> dict[str, Any]:
    """Per-subject table, overall mean +- sd, pooled per repetition, Wilcoxon vs chance."""
    frame = pd.DataFrame([{k: f[k] for k in ("repetition", "test_subject", "accuracy",
                                              "balanced_accuracy", "roc_auc")} for f in folds])
    per_subject = frame.groupby("test_subject")[["accuracy", "balanced_accuracy",
                                                 "roc_auc"]].agg(["mean", "std"])
    chance = 1.0 / n_classes
    means = frame.groupby("test_subject")["balanced_accuracy"].mean()
    try:
        p = float(wilcoxon(means - chance, alternative="greater").pvalue)
    except ValueError:  # all differences zero
        p = float("nan")
    pooled = pooled_metrics(folds)
    return {
        "n_folds": len(frame), "n_subjects": int(frame.test_subject.nunique()),
        "repetitions": int(frame.repetition.nunique()),
        "accuracy": [float(frame.accuracy.mean()), float(frame.accuracy.std())],
        "balanced_accuracy": [float(frame.balanced_accuracy.mean()),
                              float(frame.balanced_accuracy.std())],
        "roc_auc": [float(frame.roc_auc.mean()), float(frame.roc_auc.std())],
        "subjects_above_chance": int((means > chance).sum()),
        "wilcoxon_p": p,
        "pooled_balanced_accuracy": pooled["balanced_accuracy"].round(4).tolist(),
        "per_subject": {s: {f"{m}_{a}": float(v) for (m, a), v in row.items()}
                        for s, row in per_subject.iterrows()},
    }


def _fmt(name: str, s: dict[str, Any]) -> str:
    a, b, r = s["accuracy"], s["balanced_accuracy"], s["roc_auc"]
    return (f"| {name} | {s['n_folds']} | {a[0]:.3f} +- {a[1]:.3f} | {b[0]:.3f} +- {b[1]:.3f} "
            f"| {r[0]:.3f} +- {r[1]:.3f} | {s['subjects_above_chance']}/{s['n_subjects']} | "
            f"{s['wilcoxon_p']:.2g} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="override for every variant (repeatable)")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:KEY=VALUE,KEY=VALUE (repeatable; default 'default:')")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    variants = [_variant(v) for v in (args.variant or ["default:"])]
    results: dict[str, Any] = {"config": str(args.config), "overrides": args.overrides,
                               "variants": {}}
    rows = []
    dataset = None
    for name, sets in variants:
        config = load_config(args.config, [*args.overrides, f"cache_dir={args.out / 'cache'}",
                                           f"training.repetitions={args.repetitions}", *sets],
                             output_dir=args.out / name)
        start = time.perf_counter()
        run_stage("train", config, progress=False)
        wall = time.perf_counter() - start
        train = require("train", config)
        folder = config.output_dir / "training" / "folds"
        folds = [json.loads((folder / f"{n}.json").read_text()) for n in train.extra["order"]]
        if dataset is None:
            dataset = load_prepared(require("prepare", config))
        summary = summarise(folds, len(dataset.classes))
        summary.update(wall_s=round(wall, 1), settings=sets,
                       median_epochs=float(np.median([f["epochs_trained"] for f in folds])))
        results["variants"][name] = summary
        rows.append(_fmt(f"EEGNet {name}", summary))
        print(rows[-1], flush=True)
    if not args.no_baselines and dataset is not None:
        x, y, groups = dataset.get_data()
        groups = groups.astype(str)
        for name in BASELINES:
            features = baseline_features(name, x, dataset.sfreq, groups)
            summary = summarise(baseline_folds(features, y, groups, name),
                                len(dataset.classes))
            results["variants"][name] = summary
            rows.append(_fmt(name, summary))
            print(rows[-1], flush=True)
    print("\n| model | folds | accuracy | balanced accuracy | ROC AUC | subjects > chance | "
          "Wilcoxon p |\n|---|---:|---|---|---|---:|---:|")
    print("\n".join(rows))
    (args.out / "accuracy.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Markdown tables of a finished LOSO run (the accuracy tables of BENCHMARKS.md).

Reads the per-fold JSON files that ``eegcrp train`` writes under ``<run>/training/folds``
and prints, for each test subject, the mean +- sd over repetitions of accuracy, balanced
accuracy and ROC AUC, the overall mean +- sd over subjects x repetitions, each repetition's
pooled scores (``eegcrp.stats.pooled_metrics``), a Wilcoxon signed-rank test of the
per-subject balanced accuracies against chance, and fold wall times.

Usage::

    .venv/bin/python benchmarks/loso_table.py /tmp/bench_eegmat
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from eegcrp.stats import pooled_metrics

SCORES = ("accuracy", "balanced_accuracy", "roc_auc")


def load_folds(run: Path) -> list[dict]:
    """All fold records of one run; refuses a folder that mixes configurations."""
    paths = sorted((run / "training" / "folds").glob("*.json"))
    if not paths:
        raise SystemExit(f"no fold JSON under {run}/training/folds: run `eegcrp train` first")
    folds = [json.loads(p.read_text()) for p in paths]
    hashes = {f["config_hash"] for f in folds}
    if len(hashes) > 1:
        raise SystemExit(f"folds from {len(hashes)} configurations in {run}: {sorted(hashes)}")
    return folds


def _pm(values: pd.Series) -> str:
    sd = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.3f} ± {sd:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the --out folder of `eegcrp train`")
    args = parser.parse_args()

    folds = load_folds(args.run)
    table = pd.DataFrame([
        {k: f[k] for k in ("repetition", "test_subject", *SCORES, "epochs_trained",
                           "best_epoch", "wall_time_s", "n_train", "n_test")}
        for f in folds
    ])
    reps = sorted(int(r) for r in table.repetition.unique())
    classes = folds[0]["classes"]
    counts = np.sum([np.asarray(f["confusion_matrix"]).sum(axis=1) for f in folds
                     if f["repetition"] == reps[0]], axis=0)
    majority = counts.max() / counts.sum()
    per_class = dict(zip(classes, counts.tolist(), strict=True))
    print(f"{len(table)} folds, {table.test_subject.nunique()} test subjects, "
          f"repetitions {reps}; test windows per class {per_class} "
          f"(majority-class accuracy {majority:.3f})\n")

    rep_cols = " | ".join(f"bal. acc. rep {r}" for r in reps)
    print(f"| test subject | accuracy | balanced accuracy | ROC AUC | {rep_cols} |")
    print("|---|---|---|---|" + "---|" * len(reps))
    per_subject = table.groupby("test_subject")
    for subject, rows in per_subject:
        by_rep = rows.set_index("repetition").balanced_accuracy
        cells = " | ".join(f"{by_rep.get(r, float('nan')):.3f}" for r in reps)
        print(f"| {subject} | {_pm(rows.accuracy)} | {_pm(rows.balanced_accuracy)} | "
              f"{_pm(rows.roc_auc)} | {cells} |")
    print(f"| **all {len(table)} folds** | **{_pm(table.accuracy)}** | "
          f"**{_pm(table.balanced_accuracy)}** | **{_pm(table.roc_auc)}** |" + " |" * len(reps))

    means = per_subject[list(SCORES)].mean()
    print(f"\nsd of the {len(means)} per-subject means: "
          + ", ".join(f"{s} {means[s].std(ddof=1):.3f}" for s in SCORES))
    stat = wilcoxon(means.balanced_accuracy - 0.5, alternative="greater")
    n_above = int((means.balanced_accuracy > 0.5).sum())
    print(f"per-subject balanced accuracy > 0.5 in {n_above}/{len(means)} subjects; "
          f"Wilcoxon signed-rank vs 0.5 (one-sided): W = {stat.statistic:.1f}, "
          f"p = {stat.pvalue:.3g}")

    pooled = pooled_metrics(folds)
    print("\n| repetition | accuracy | balanced acc. | macro F1 | ROC AUC |")
    print("|---|---|---|---|---|")
    for _, row in pooled.iterrows():
        print(f"| {int(row.repetition)} | {row.accuracy:.3f} | {row.balanced_accuracy:.3f} | "
              f"{row.f1_macro:.3f} | {row.roc_auc:.3f} |")
    print(f"| mean ± sd | {_pm(pooled.accuracy)} | {_pm(pooled.balanced_accuracy)} | "
          f"{_pm(pooled.f1_macro)} | {_pm(pooled.roc_auc)} |")

    wall = table.wall_time_s
    rate = table.n_train * table.epochs_trained / wall
    print(f"\nepochs trained {table.epochs_trained.min()}-{table.epochs_trained.max()} "
          f"(mean {table.epochs_trained.mean():.0f}); best epoch {table.best_epoch.min()}-"
          f"{table.best_epoch.max()} (mean {table.best_epoch.mean():.0f})")
    print(f"fold wall time: median {wall.median():.1f} s, mean {wall.mean():.1f}, "
          f"min {wall.min():.1f}, max {wall.max():.1f}, sum {wall.sum() / 60:.1f} min; "
          f"median {(wall / table.epochs_trained).median():.2f} s/epoch, "
          f"{rate.median():.0f} train windows/s")


if __name__ == "__main__":
    main()

"""The per-dataset table of BENCHMARKS.md's "Studies" section, from one finished study.

Reads the study through the results layer only (``load_training``, ``load_decoding``) and
prints per held-out subject EEGNet's accuracy and balanced accuracy (mean +- sd over the
repetitions), the repetition ensemble's, and the same-fold baselines' balanced accuracy,
then the mean over subjects with its 95 % t interval and EEGNet's paired tests.

Usage::

    .venv/bin/python benchmarks/study_table.py /tmp/rd21/bci
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eegcrp.evidence import t_interval
from eegcrp.results import load_decoding, load_training

MODELS = ("eegnet_ensemble", "logbp+lr", "ts+lr")


def _ci(values) -> str:
    lo, hi = t_interval(values)
    return f"**{values.mean():.3f}** [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    metrics = load_training(args.run).metrics
    decoding = load_decoding(args.run)
    reps = metrics["repetition"].nunique()
    per = metrics.groupby("test_subject")[["accuracy", "balanced_accuracy"]].agg(["mean", "std"])
    acc = decoding.table("accuracy")
    bacc = decoding.table("balanced_accuracy")
    print(f"| held-out subject | EEGNet accuracy (R = {reps}) | EEGNet balanced | ensemble "
          "accuracy | ensemble balanced | logbp+lr balanced | ts+lr balanced |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s, row in per.iterrows():
        print(f"| {s} | {row[('accuracy', 'mean')]:.3f} ± {row[('accuracy', 'std')]:.3f} | "
              f"{row[('balanced_accuracy', 'mean')]:.3f} ± "
              f"{row[('balanced_accuracy', 'std')]:.3f} | {acc.loc[s, 'eegnet_ensemble']:.3f} | "
              f"{bacc.loc[s, 'eegnet_ensemble']:.3f} | {bacc.loc[s, 'logbp+lr']:.3f} | "
              f"{bacc.loc[s, 'ts+lr']:.3f} |")
    print(f"| **mean [95 % CI] over {len(per)} subjects** | {_ci(acc['eegnet'])} | "
          f"{_ci(bacc['eegnet'])} | {_ci(acc['eegnet_ensemble'])} | "
          f"{_ci(bacc['eegnet_ensemble'])} | {_ci(bacc['logbp+lr'])} | {_ci(bacc['ts+lr'])} |")
    print("\nEEGNet (balanced accuracy) against:")
    for model, t in decoding.summary["versus_eegnet"].items():
        print(f"- {model}: {t['difference']:+.3f} [{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}], "
              f"SMD {t['smd']:+.2f}, {t['test']} p = {t['p_eegnet_better']:.3g} (EEGNet better)")


if __name__ == "__main__":
    main()

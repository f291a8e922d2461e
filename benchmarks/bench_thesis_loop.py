"""The thesis' training loop, reimplemented plainly, side by side with eegcrp's LOSOTrainer.

    .venv/bin/python benchmarks/bench_thesis_loop.py configs/bciciv2b.yaml \\
        --out /tmp/issue4_bench/bci_loso --subjects B01 B02 --epochs 500 --threads 1

For each requested test subject (repetition 0) this trains, in one process and one after
the other on the same windows:

* **thesis loop** -- ``thesis_implementation.md`` section 3 written out as the thesis did it:
  ``DataLoader(TensorDataset(x, y), batch_size=128, shuffle=False)`` over the training
  subjects in dataset order, the thesis model (``build_model(ModelConfig(variant='thesis'))``,
  torch seed ``rep * n_subjects + k``), Adam with its defaults, unweighted
  ``CrossEntropyLoss``, a fixed number of epochs, no validation, the final model, and per
  batch (training and test) a common average reference followed by a z-score over
  channels x time with the unbiased standard deviation. ``--no-car`` drops the CAR (the
  BCI IV 2b channels are bipolar derivations, for which the eegcrp config disables CAR).
* **eegcrp** -- the same fold of :class:`eegcrp.training.LOSOTrainer` (the code a fold of
  ``eegcrp train`` runs, ``eegcrp.training.loso._run_fold``) with the study config's training
  section (``protocol: default``: EEGNet-8,2, one validation subject, early stopping,
  shuffled class-weighted batches, max-norm).

Both use ``torch.set_num_threads(--threads)``. The preprocessed windows come from the
preprocessing cache of ``--out`` (created if missing). Prints one line per fold and model
and a summary (wall-time ratio, mean accuracies); ``--json`` also writes them to a file.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from _common import load_study, study_parser
from eegcrp.config import ModelConfig
from eegcrp.models import build_model
from eegcrp.training import LOSOTrainer, normalize_windows
from eegcrp.training.loso import _run_fold


def thesis_normalize(xb: torch.Tensor, car: bool) -> torch.Tensor:
    """Per-batch CAR (mean over channels per time point), then z-score per window (ddof=1)."""
    if car:
        xb = xb - xb.mean(dim=1, keepdim=True)
    mean = xb.mean(dim=(1, 2), keepdim=True)
    std = xb.std(dim=(1, 2), keepdim=True)  # torch.std: unbiased, like the thesis
    return (xb - mean) / std


def thesis_fold(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, subjects: list[str], k: int,
    rep: int, epochs: int, sfreq: float, car: bool, n_classes: int,
) -> dict:
    """Train the thesis loop on all subjects but ``subjects[k]`` and test on it."""
    start = time.perf_counter()
    test = subjects[k]
    train_idx = np.flatnonzero(groups != test)  # dataset order = subject by subject
    test_idx = np.flatnonzero(groups == test)
    torch.manual_seed(rep * len(subjects) + k)
    model = build_model(ModelConfig(variant="thesis"), x.shape[1], x.shape[2], n_classes, sfreq)
    loader = DataLoader(
        TensorDataset(torch.as_tensor(x[train_idx]), torch.as_tensor(y[train_idx])),
        batch_size=128, shuffle=False,
    )
    optimizer = torch.optim.Adam(model.parameters())
    criterion = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(thesis_normalize(xb, car)), yb)
            loss.backward()
            optimizer.step()
    train_wall = time.perf_counter() - start
    model.eval()
    test_loader = DataLoader(
        TensorDataset(torch.as_tensor(x[test_idx]), torch.as_tensor(y[test_idx])),
        batch_size=128, shuffle=False,
    )
    correct = 0
    with torch.no_grad():
        for xb, yb in test_loader:
            correct += int((model(thesis_normalize(xb, car)).argmax(1) == yb).sum())
    return {
        "model": "thesis loop", "test_subject": test, "epochs": epochs,
        "n_train": len(train_idx), "n_test": len(test_idx),
        "accuracy": correct / len(test_idx), "wall_time_s": time.perf_counter() - start,
        "windows_per_s": len(train_idx) * epochs / train_wall,
    }


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--subjects", nargs="+", required=True, help="test subjects")
    parser.add_argument("--epochs", type=int, default=500, help="thesis loop epochs")
    parser.add_argument("--no-car", action="store_true", help="thesis loop without CAR")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    study = load_study(args)
    dataset, subjects, x_volts, y, groups, shape = (study.dataset, study.subjects, study.x,
                                                    study.y, study.groups, study.shape)
    n_classes, sfreq = shape["n_classes"], shape["sfreq"]
    tc = study.config.training.model_copy(update={"threads": args.threads, "n_jobs": 1,
                                                  "device": "cpu"})
    mc = study.config.model
    x_norm = normalize_windows(x_volts)  # what LOSOTrainer.fit feeds its folds
    specs = {s.subject: s for s in LOSOTrainer(mc, tc).fold_specs(subjects)
             if s.repetition == 0}
    x_volts = np.ascontiguousarray(x_volts, dtype=np.float32)

    print(f"{dataset.name}: {len(subjects)} subjects, {len(y)} windows of "
          f"{x_volts.shape[1]} ch x {x_volts.shape[2]} samples; {args.threads} thread(s); "
          f"thesis loop {args.epochs} epochs (CAR {'off' if args.no_car else 'on'}); eegcrp "
          f"protocol {tc.protocol}, max_epochs {tc.max_epochs}, patience {tc.patience}, "
          f"model {mc.variant}", flush=True)
    rows = []
    for test in args.subjects:
        k = subjects.index(test)
        row = thesis_fold(x_volts, y, groups, subjects, k, 0, args.epochs, sfreq,
                          not args.no_car, n_classes)
        rows.append(row)
        print(f"  {test} thesis loop: acc {row['accuracy']:.3f}, {row['epochs']} epochs, "
              f"{row['wall_time_s']:.1f} s, {row['windows_per_s']:.0f} windows/s", flush=True)
        res = _run_fold(specs[test], x_norm, y, groups, None, shape, mc, tc, None,
                        args.threads)
        hist = res["history"]
        row = {
            "model": "eegcrp", "test_subject": test, "epochs": hist["epochs_trained"],
            "best_epoch": hist["best_epoch"], "n_train": res["n_train"], "n_val": res["n_val"],
            "n_test": res["n_test"], "accuracy": res["scores"]["accuracy"],
            "wall_time_s": res["wall_time_s"],
            "windows_per_s": res["n_train"] * hist["epochs_trained"] / res["wall_time_s"],
        }
        rows.append(row)
        print(f"  {test} eegcrp:      acc {row['accuracy']:.3f}, {row['epochs']} epochs "
              f"(best {row['best_epoch']}), {row['wall_time_s']:.1f} s, "
              f"{row['windows_per_s']:.0f} train windows/s incl. validation", flush=True)

    thesis = [r for r in rows if r["model"] == "thesis loop"]
    ours = [r for r in rows if r["model"] == "eegcrp"]
    t_thesis = sum(r["wall_time_s"] for r in thesis)
    t_ours = sum(r["wall_time_s"] for r in ours)
    summary = {
        "folds": len(thesis),
        "thesis_wall_s": t_thesis, "eegcrp_wall_s": t_ours,
        "wall_ratio_thesis_over_eegcrp": t_thesis / t_ours,
        "thesis_mean_accuracy": float(np.mean([r["accuracy"] for r in thesis])),
        "eegcrp_mean_accuracy": float(np.mean([r["accuracy"] for r in ours])),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__, "threads": args.threads, "thesis_epochs": args.epochs,
        "car": not args.no_car,
    }
    print(f"summary: thesis loop {t_thesis:.1f} s vs eegcrp {t_ours:.1f} s over "
          f"{len(thesis)} fold(s) -> ratio {summary['wall_ratio_thesis_over_eegcrp']:.2f}; "
          f"mean accuracy thesis {summary['thesis_mean_accuracy']:.3f}, eegcrp "
          f"{summary['eegcrp_mean_accuracy']:.3f}; peak RSS {summary['peak_rss_mib']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()

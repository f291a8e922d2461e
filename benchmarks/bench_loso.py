"""Time per LOSO fold, training throughput and peak memory on a real (cached) dataset.

    .venv/bin/python benchmarks/bench_loso.py configs/bciciv2b.yaml --out /tmp/bench_bci \\
        --threads 1 --epochs 20 --folds 1

Runs the first ``--folds`` folds of repetition 0 exactly as ``eegcrp train`` does (same
normalisation, split, seeds and ``eegcrp.training.loso._run_fold``), but with a *fixed* number of
epochs (``max_epochs = patience = --epochs``, so early stopping never triggers) so that
timings at different thread counts are comparable. Per fold it prints the wall time, the
epochs, the training windows and the throughput (training windows x epochs / wall time;
the wall time includes the per-epoch validation pass and the final test pass), then the
process' peak resident memory (``ru_maxrss``; it includes the whole dataset in memory).
The preprocessed windows come from the cache of ``--out`` (created if missing; that time is
reported separately and not counted in the fold times).
"""

from __future__ import annotations

import resource
import statistics

from _common import load_study, study_parser
from eegcrp.training import LOSOTrainer, normalize_windows
from eegcrp.training.loso import _run_fold


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=20, help="fixed epochs per fold")
    parser.add_argument("--folds", type=int, default=1, help="first N folds of repetition 0")
    args = parser.parse_args()

    study = load_study(args)
    dataset, subjects, y, groups, shape = (study.dataset, study.subjects, study.y,
                                           study.groups, study.shape)
    t_prepare = study.prepare_s
    x = normalize_windows(study.x)
    tc = study.config.training.model_copy(update={
        "threads": args.threads, "n_jobs": 1, "device": "cpu",
        "max_epochs": args.epochs, "patience": args.epochs,
    })
    mc = study.config.model
    specs = [s for s in LOSOTrainer(mc, tc).fold_specs(subjects) if s.repetition == 0]
    print(f"{dataset.name}: {len(subjects)} subjects, {len(y)} windows of {x.shape[1]} ch x "
          f"{x.shape[2]} samples, model {mc.variant}, {args.threads} thread(s), "
          f"{args.epochs} fixed epochs; prepare/load {t_prepare:.1f} s", flush=True)
    walls, rates = [], []
    for spec in specs[: args.folds]:
        res = _run_fold(spec, x, y, groups, None, shape, mc, tc, None, args.threads)
        epochs = res["history"]["epochs_trained"]
        rate = res["n_train"] * epochs / res["wall_time_s"]
        walls.append(res["wall_time_s"])
        rates.append(rate)
        print(f"  fold {spec.name}: {res['wall_time_s']:.1f} s, {epochs} epochs, "
              f"{res['n_train']} train / {res['n_val']} val / {res['n_test']} test windows, "
              f"{res['wall_time_s'] / epochs:.3f} s/epoch, {rate:.0f} train windows/s, "
              f"acc {res['scores']['accuracy']:.3f}", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median fold {statistics.median(walls):.1f} s ({args.epochs} epochs), median "
          f"{statistics.median(rates):.0f} train windows/s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()

"""How much the torch thread count changes a trained fold, with ``b1_bn1``'s shift frozen
(the default since issue 17) and trainable (as before).

    .venv/bin/python benchmarks/bench_thread_numbers.py configs/eegmat.yaml --out results/eegmat \
        --set "dataset.subjects=[1, 2, 3, 4, 5, 6]" --set training.max_epochs=30

Trains the first fold of repetition 0 (the engine's own ``_run_fold``: same split, seeds and
loop as ``eegcrp train``) with 1 and with 2 torch threads, once with the shift frozen and
once trainable, and prints per setting: the largest absolute difference between the two
thread counts of every parameter tensor relative to that tensor's largest magnitude (the
worst tensor is named; running statistics left out), that of ``b1_bn1.bias``, the largest
difference of the held-out class probabilities, the
epochs trained and the balanced accuracy with each thread count. Numbers, not timings:
the thread count is outside every identity, so this says what it may change.
"""

from __future__ import annotations

from unittest import mock

import numpy as np

from _common import load_study, study_parser
from eegcrp import models
from eegcrp.training import LOSOTrainer, normalize_windows
from eegcrp.training.loso import _run_fold


def _train(study, spec, threads: int, frozen: bool) -> dict:
    mc, tc = study.config.model, study.config.training
    x = normalize_windows(study.x)
    freeze = models.freeze_redundant_shift if frozen else (lambda model: None)
    with mock.patch.object(models, "freeze_redundant_shift", freeze):
        return _run_fold(spec, x, study.y, study.groups, None, study.shape, mc, tc, None,
                         threads)


def _compare(a: dict, b: dict) -> dict:
    worst, name = 0.0, ""
    for key, wa in a["state_dict"].items():
        # running statistics are buffers near zero (means of z-scored input): their relative
        # difference says little; their effect is in the probabilities
        if not wa.is_floating_point() or key.endswith(("running_mean", "running_var")):
            continue
        wb = b["state_dict"][key]
        scale = float(wa.abs().max()) or 1.0
        diff = float((wa - wb).abs().max()) / scale
        if diff > worst:
            worst, name = diff, key
    proba = float(np.abs(np.asarray(a["proba"]) - np.asarray(b["proba"])).max())
    shift = float((a["state_dict"]["b1_bn1.bias"] - b["state_dict"]["b1_bn1.bias"]).abs().max())
    return {"worst_param": name, "rel_diff": worst, "proba_diff": proba, "shift": shift,
            "epochs": (a["history"]["epochs_trained"], b["history"]["epochs_trained"]),
            "bacc": (a["scores"]["balanced_accuracy"], b["scores"]["balanced_accuracy"])}


def main() -> None:
    args = study_parser(__doc__).parse_args()
    study = load_study(args)
    spec = LOSOTrainer(study.config.model, study.config.training).fold_specs(study.subjects)[0]
    print(f"fold {spec.name}: {len(study.subjects)} subjects, {study.x.shape[1]} channels, "
          f"max_epochs {study.config.training.max_epochs}")
    print("| b1_bn1 shift | worst parameter | max rel. diff | b1_bn1.bias diff | max proba diff "
          "| epochs 1/2 thr | balanced acc. 1/2 thr |")
    print("|---|---|---:|---:|---:|---|---|")
    for frozen in (True, False):
        one, two = (_train(study, spec, t, frozen) for t in (1, 2))
        r = _compare(one, two)
        print(f"| {'frozen' if frozen else 'trainable'} | {r['worst_param']} | "
              f"{r['rel_diff']:.2e} | {r['shift']:.2e} | {r['proba_diff']:.2e} | "
              f"{r['epochs'][0]}/{r['epochs'][1]} "
              f"| {r['bacc'][0]:.4f}/{r['bacc'][1]:.4f} |")


if __name__ == "__main__":
    main()

"""Stage ``train``: leave-one-subject-out EEGNet training (:class:`eegcrp.training.LOSOTrainer`).

Reads the windows that the verified ``prepare`` manifest lists. Products:
``training/metrics.csv`` and per fold ``folds/<fold>.pt`` and ``folds/<fold>.json``. The
manifest's ``extra.folds`` lists every fold in repetition, subject order with its
repetition, held-out subject, training and validation subjects, scores, the threads and
device it ran with and its checkpoint hash; later stages read only these folds.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .manifest import file_record
from .prepare import load_prepared
from .registry import Stage, StageContext, register

__all__ = ["FOLD_KEYS", "fold_records"]

#: Per-fold fields copied into the manifest.
FOLD_KEYS = ("repetition", "test_subject", "train_subjects", "val_subjects", "accuracy",
             "balanced_accuracy", "roc_auc", "epochs_trained", "best_epoch", "threads",
             "device", "checkpoint", "checkpoint_sha256")


def fold_records(manifest: Any) -> list[dict[str, Any]]:
    """The folds a verified ``train`` manifest lists, in repetition, subject order."""
    folds = manifest.extra.get("folds", {})
    return [dict(folds[name], name=name) for name in manifest.extra.get("order", folds)]


def _run(ctx: StageContext) -> pd.DataFrame:
    from ..training import LOSOTrainer

    config = ctx.config
    prepared = ctx.inputs["prepare"]
    dataset = load_prepared(prepared)
    folds: dict[str, Any] = {}
    ctx.manifest.extra = {"folds": folds, "order": []}

    def record(rec: dict[str, Any]) -> None:
        name = rec["name"]
        for suffix in (".pt", ".json"):
            ctx.manifest.add_product(ctx.folder, f"folds/{name}{suffix}")
        folds[name] = {k: rec.get(k) for k in FOLD_KEYS}

    def finished(rec: dict[str, Any]) -> None:
        record(rec)
        ctx.save()  # after every fold: a killed run resumes from here

    trainer = LOSOTrainer(config.model, config.training).fit(
        dataset, ctx.folder, identity=ctx.manifest.identity, progress=ctx.progress,
        on_fold=finished,
        extra_meta={"channels": prepared.extra["channels"],
                    "preprocessing_key": prepared.extra["cache"]["key"]},
    )
    for rec in trainer.folds_:
        if rec["name"] not in folds:  # reused from an earlier run
            record(rec)
    ctx.manifest.extra["order"] = [rec["name"] for rec in trainer.folds_]
    ctx.manifest.extra["skipped"] = list(trainer.skipped_)
    ctx.manifest.products["metrics.csv"] = file_record(ctx.folder / "metrics.csv")
    return trainer.metrics_


def _load(ctx: StageContext) -> pd.DataFrame | None:
    """The metrics of a finished run, if it has every fold this config asks for."""
    from ..training import LOSOTrainer

    subjects = ctx.inputs["prepare"].extra["dataset"]["subjects"]
    wanted = [s.name for s in LOSOTrainer(ctx.config.model,
                                          ctx.config.training).fold_specs(subjects)]
    if wanted != list(ctx.manifest.extra.get("order", [])):
        return None
    return pd.read_csv(ctx.folder / "metrics.csv", dtype={"test_subject": str})


def _check(config: Any, inputs: dict[str, Any]) -> None:
    """What would refuse training, known before it starts: the device, whether the windows
    fit the model and (once ``prepare`` is there) the folds' subject splits."""
    from ..training import LOSOTrainer, check_model_input, resolve_device

    resolve_device(config.training.device)
    pp = config.preprocessing
    shape = {"n_channels": 1, "n_times": round(pp.window * pp.sfreq), "n_classes": 2,
             "sfreq": float(pp.sfreq)}
    if "prepare" in inputs:
        desc = inputs["prepare"].extra["dataset"]
        LOSOTrainer(config.model, config.training).fold_specs(desc["subjects"])
        shape = {"n_channels": len(inputs["prepare"].extra["channels"]["names"]),
                 "n_times": int(desc["n_times"]), "n_classes": len(desc["classes"]),
                 "sfreq": float(desc["sfreq"])}
    check_model_input(config.model, **shape, engine=config.training.engine)


def _report(report: Any, ctx: Any) -> None:
    from ..report.training_section import add_training_section

    add_training_section(report, ctx)


def _describe(metrics: pd.DataFrame, config: Any) -> str:
    from ..stats import summarize

    return (f"{summarize(metrics).to_string()}\n\ntraining results in "
            f"{config.output_dir}/training")


STAGE = register(Stage(
    name="train",
    help="leave-one-subject-out EEGNet training",
    folder="training",
    sections=("model", "training"),
    ignore={"training": ("repetitions",)},
    requires=("prepare",),
    run=_run,
    report=_report,
    format=2,
    describe=_describe,
    load=_load,
    check=_check,
))

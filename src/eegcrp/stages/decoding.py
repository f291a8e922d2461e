"""Stage ``decoding``: repetition ensembles and same-fold baselines beside EEGNet's scores.

Reads the verified ``train`` manifest's folds (their test predictions) and the ``prepare``
windows. Per held-out subject it scores the single models (mean over repetitions), their
repetition ensemble (:mod:`eegcrp.training.ensemble`) and each baseline of
``decoding.baselines`` trained on every other subject (:mod:`eegcrp.training.baselines`),
all on exactly the same windows. Products: ``scores.csv`` (subject x model) and
``predictions.nc`` (the ensemble's and baselines' probabilities per window). The manifest's
``extra`` holds per model the mean over subjects with its 95 % t interval, and EEGNet's paired
comparison with the ensemble and each baseline (:func:`eegcrp.comparison.paired_test`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from threadpoolctl import threadpool_limits

from ..comparison import paired_test
from ..errors import StageError
from ..evidence import t_interval
from ..netcdf import write_netcdf
from ..results import load_training
from .prepare import load_prepared
from .registry import Stage, StageContext, register, stage_folder

__all__ = ["SCORE_FOR_CHANCE"]

#: The score every comparison uses: balanced accuracy is accuracy on balanced classes and
#: stays at chance for a model that answers one class on imbalanced ones.
SCORE_FOR_CHANCE = "balanced_accuracy"


def _predictions(subjects: list[str], y: dict[str, np.ndarray], probas: dict[str, dict],
                 classes: list[str]) -> xr.Dataset:
    models = list(probas)
    window_subject = np.concatenate([[s] * len(y[s]) for s in subjects])
    proba = np.stack([np.concatenate([probas[m][s] for s in subjects]) for m in models])
    return xr.Dataset(
        {"proba": (("model", "window", "class"), proba.astype(np.float64)),
         "y_true": ("window", np.concatenate([y[s] for s in subjects]).astype(np.int64))},
        coords={"model": models, "class": classes,
                "subject": ("window", window_subject.astype(str))},
        attrs={"description": "class probabilities of each held-out subject's windows "
                              "(prepared order); eegnet_ensemble: mean over the subject's "
                              "repetition models"})


def _summary(scores: pd.DataFrame) -> dict[str, Any]:
    table = scores.pivot(index="subject", columns="model", values=SCORE_FOR_CHANCE)
    out: dict[str, Any] = {"score": SCORE_FOR_CHANCE, "models": {}, "versus_eegnet": {}}
    for model in table.columns:
        values = table[model].to_numpy()
        lo, hi = t_interval(values)
        out["models"][model] = {"mean": float(values.mean()), "ci": [lo, hi],
                                "n_subjects": len(values)}
    if len(table) >= 2:
        for model in table.columns.drop("eegnet"):
            test = paired_test(table["eegnet"], table[model])
            out["versus_eegnet"][model] = {
                "difference": test.mean_difference, "ci": list(test.ci), "smd": test.smd,
                "p_eegnet_better": test.p, "test": test.test, "n": test.n}
    return out


def _run(ctx: StageContext) -> pd.DataFrame:
    from ..training.baselines import baseline_features, loso_probabilities
    from ..training.ensemble import scores_row, single_models_row, subject_predictions

    config = ctx.config
    training = load_training(stage_folder(config, "train"))
    by_subject = subject_predictions(training.histories())
    subjects = list(by_subject)
    dataset = load_prepared(ctx.inputs["prepare"], subjects)
    x, y, groups = dataset.get_data(subjects)
    groups = groups.astype(str)
    y_by = {s: by_subject[s].y_true for s in subjects}
    for s in subjects:
        if not np.array_equal(y[groups == s], y_by[s]):
            raise StageError(f"the training folds of {s} were scored on other windows than "
                             "the prepared ones; re-run `eegcrp train CONFIG --overwrite`")
    rows, probas = [], {"eegnet_ensemble": {}}
    for s in subjects:
        entry = by_subject[s]
        rows.append(single_models_row(entry))
        probas["eegnet_ensemble"][s] = entry.ensemble
        rows.append(scores_row(s, "eegnet_ensemble", entry.y_true, entry.ensemble,
                               len(entry.members)))
    n_classes = len(dataset.classes)
    # One BLAS thread: batched eigendecompositions of small covariances gain nothing from
    # more, and beside any other busy process they run several times slower with them.
    with threadpool_limits(1):
        for name in config.decoding.baselines:
            features = baseline_features(name, x, dataset.sfreq, groups)
            probas[name] = loso_probabilities(features, y, groups, subjects, n_classes,
                                              config.decoding.C)
            rows += [scores_row(s, name, y_by[s], probas[name][s]) for s in subjects]
    scores = pd.DataFrame(rows)
    ctx.write_csv(scores, "scores.csv")
    write_netcdf(_predictions(subjects, y_by, probas, dataset.classes),
                 ctx.folder / "predictions.nc")
    ctx.manifest.add_product(ctx.folder, "predictions.nc")
    ctx.manifest.extra = {"subjects": subjects, "classes": dataset.classes,
                          "repetitions": sorted({r for e in by_subject.values()
                                                 for r in e.repetitions}),
                          "summary": _summary(scores)}
    return scores


def _load(ctx: StageContext) -> pd.DataFrame:
    return pd.read_csv(ctx.folder / "scores.csv", dtype={"subject": str})


def _report(report: Any, ctx: Any) -> None:
    from ..report.decoding_section import add_decoding_section

    add_decoding_section(report, ctx)


def _describe(scores: pd.DataFrame, config: Any) -> str:
    table = scores.groupby("model", sort=False)[[SCORE_FOR_CHANCE, "roc_auc"]].mean()
    return (f"{table.round(3).to_string()}\n\ndecoding results in "
            f"{config.output_dir}/decoding")


STAGE = register(Stage(
    name="decoding",
    help="repetition ensembles and same-fold baselines beside EEGNet's scores",
    folder="decoding",
    sections=("decoding",),
    ignore={"decoding": ("headline",)},
    requires=("prepare", "train"),
    run=_run,
    report=_report,
    auto=True,
    describe=_describe,
    load=_load,
))

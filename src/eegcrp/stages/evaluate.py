"""Stage ``evaluate``: is each explanation faithful to its model, does it change when the model
is randomised, and (simulated data) does it recover the planted effect?

Per fold (those of the first ``evaluate.repetitions``, at most ``evaluate.max_folds`` of
them, in repetition, subject order), on up to
``max_windows`` held-out windows of the fold's test subject (stratified by class, seeded):

* every method (the LRP composites of ``evaluate.composites`` and the gradient baselines)
  attributes the explained score of each window's true class (:mod:`eegcrp.evaluation.
  attribution`); aligned models are attributed in sensor space through the alignment's
  virtual layer;
* conservation: each heatmap's sum against the score it decomposes (LRP methods);
* faithfulness: perturbation curves per domain and order and their AOPC/ABPC
  (:mod:`eegcrp.evaluation.perturbation`); over folds, relevance-ordered against random
  removal tested per method and domain, paired over held-out subjects, with its effect
  size and verdict (:func:`eegcrp.evidence.faithfulness_evidence`, ``faithfulness.csv``);
* ground truth of simulated data (:mod:`eegcrp.evaluation.ground_truth`).

The first ``randomisation_folds`` folds get the cascading randomisation and the first
``shuffled_label_folds`` a model retrained on labels permuted within each training subject
(:mod:`eegcrp.evaluation.randomisation`); every fold's pooled concept clusters (pipeline
B) are ablated one at a time (:mod:`eegcrp.evaluation.concepts`). Products (CSV):
``aopc.csv``, ``faithfulness.csv``, ``curves.csv``, ``conservation.csv``, ``randomisation.csv``,
``concept_ablation.csv`` and, for simulated data, ``ground_truth.csv`` and
``cluster_ground_truth.csv``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ExplainError
from ..results import EVALUATION_TABLES
from .manifest import Manifest
from .prepare import load_prepared
from .registry import Stage, StageContext, register, stage_folder
from .train import fold_records

logger = logging.getLogger(__name__)

__all__ = ["PRODUCTS", "folds_to_evaluate"]

#: The stage's CSV products (``<name>.csv``), read back by :func:`eegcrp.load_evaluation`.
PRODUCTS = EVALUATION_TABLES


def folds_to_evaluate(records: list[dict[str, Any]], ec: Any) -> list[dict[str, Any]]:
    """The train folds ``ec`` (:class:`eegcrp.config.EvaluateConfig`) selects, in order."""
    folds = [f for f in records
             if ec.repetitions is None or int(f["repetition"]) < ec.repetitions]
    return folds[: ec.max_folds] if ec.max_folds else folds


def _run(ctx: StageContext) -> dict[str, Any]:
    from ..concepts import load_concepts
    from ..evaluation import method_names
    from ..evaluation.concepts import cluster_ground_truth, cluster_members
    from ..evaluation.folds import evaluate_fold, pick_windows, shuffled_label_model
    from ..evidence import faithfulness_table
    from ..parallel import parallel_map
    from ..store import open_relevance

    config = ctx.config
    ec, xc = config.evaluate, config.explain
    prepared, train = ctx.inputs["prepare"], ctx.inputs["train"]
    explained: Manifest = ctx.inputs["explain"]
    dataset = load_prepared(prepared)
    folds = folds_to_evaluate(fold_records(train), ec)
    if not folds:
        raise ExplainError("the train manifest lists no folds; run `eegcrp train` first")
    channels = explained.extra.get("channels") or {}
    positions = channels.get("positions")
    positions = (np.asarray(positions, np.float64)
                 if positions and all(p is not None for p in positions) else None)
    methods = method_names(ec.resolved_composites(xc.composite), ec.baselines)
    seed = int(ec.seed if ec.seed is not None else config.seed)
    base = {"evaluate": ec, "explain": xc, "methods": methods, "seed": seed,
            "positions": positions, "classes": list(dataset.classes),
            "ground_truth": explained.extra.get("ground_truth")}
    train_dir = stage_folder(config, "train") / "folds"
    concepts = load_concepts(ctx.config.output_dir)
    store = open_relevance(ctx.config.output_dir)

    def tasks():
        for k, fold in enumerate(folds):
            x, y, groups = dataset.get_data([fold["test_subject"]])
            meta = dataset[fold["test_subject"]].metadata
            onset = (meta["onset"].to_numpy(np.float64) if meta is not None and "onset" in meta
                     else np.zeros(len(y)))
            pick = pick_windows(y, ec.max_windows, np.random.default_rng([seed, k]))
            context = {**base, "randomise": k < ec.randomisation_folds,
                       "members": cluster_members(concepts.filters, fold["name"]),
                       "total_relevance": store.fold(fold["name"]).summary(
                           "total_relevance").values.astype(np.float64)}
            if k < ec.shuffled_label_folds:
                context["shuffled_model"], context["shuffled_accuracy"] = shuffled_label_model(
                    fold, dataset, config, seed)
            yield (fold, train_dir / fold["checkpoint"], x[pick], y[pick].astype(np.int64),
                   groups[pick].astype(str), onset[pick], context)

    merged: dict[str, list[dict]] = {k: [] for k in PRODUCTS}
    for result in parallel_map(evaluate_fold, tasks(), ec, n_tasks=len(folds),
                               what="folds to evaluate"):
        for key, rows in result.items():
            merged[key] += rows
    if base["ground_truth"] is not None:
        merged["cluster_ground_truth"] = cluster_ground_truth(
            concepts.arrays, concepts.clusters, base["ground_truth"])
    order = {f["name"]: i for i, f in enumerate(folds)}
    merged["faithfulness"] = faithfulness_table(pd.DataFrame(merged["aopc"]), methods,
                                                alpha=ec.alpha, min_dz=ec.min_effect)
    for key, rows in merged.items():
        if rows or key not in ("ground_truth", "cluster_ground_truth"):
            rows.sort(key=lambda r: order.get(r.get("fold", ""), 0))
            ctx.write_csv(pd.DataFrame(rows), f"{key}.csv")
    aopc = pd.DataFrame(merged["aopc"])
    summary = (aopc.groupby(["method", "domain"])[["aopc_morf", "aopc_random", "abpc"]]
               .mean().round(4).reset_index().to_dict(orient="records")) if len(aopc) else []
    ablation = pd.DataFrame(merged["concept_ablation"])
    concept_r = (float(ablation[["relevance_share", "relative_drop"]].corr().iloc[0, 1])
                 if len(ablation) > 2 else float("nan"))
    ctx.manifest.extra = {"folds": [f["name"] for f in folds], "methods": methods,
                          "summary": summary, "concept_ablation_r": concept_r}
    return {"folds": len(folds), "methods": methods, "summary": summary,
            "concept_ablation_r": concept_r}


def _describe(result: dict[str, Any], config: Any) -> str:
    lines = [f"evaluated {result['folds']} fold(s) with {len(result['methods'])} method(s); "
             f"results in {config.output_dir}/evaluate"]
    lines.append(f"  concept ablation: correlation of relevance share and score drop "
                 f"r = {result['concept_ablation_r']:.2f}")
    for row in result["summary"]:
        lines.append(f"  {row['method']:28s} {row['domain']:8s} AOPC MoRF "
                     f"{row['aopc_morf']:+.3f}  random {row['aopc_random']:+.3f}  "
                     f"ABPC {row['abpc']:+.3f}")
    return "\n".join(lines)


def _load(ctx: StageContext) -> dict[str, Any]:
    extra = ctx.manifest.extra
    return {"folds": len(extra.get("folds", [])), "methods": extra.get("methods", []),
            "summary": extra.get("summary", []),
            "concept_ablation_r": extra.get("concept_ablation_r", float("nan"))}


def _report(report: Any, ctx: Any) -> None:
    from ..report.quality_section import add_quality_section

    add_quality_section(report, ctx)


STAGE = register(Stage(
    name="evaluate",
    help="explanation quality: faithfulness, conservation, randomisation, ground truth",
    folder="evaluate",
    sections=("evaluate", "explain"),
    ignore={"explain": ("batch_size",)},
    requires=("prepare", "train", "explain", "concepts"),
    run=_run,
    report=_report,
    describe=_describe,
    load=_load,
))

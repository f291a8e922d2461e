"""One fold's explanation-quality checks (what the ``evaluate`` stage runs per fold).

:func:`evaluate_fold` attributes the held-out windows with every method, measures
conservation and faithfulness (perturbation curves per domain and order), ground-truth
recovery on simulated data, the cascading randomisation and the concept ablation;
:func:`shuffled_label_model` retrains a fold on labels permuted within each training
subject (the data-randomisation check). Rows are returned per table of
:data:`eegcrp.results.EVALUATION_TABLES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..io import load_checkpoint
from ..models import build_model
from ..relevance.alignment import sensor_relevance
from ..results import EVALUATION_TABLES
from ..training import normalize_windows
from ..training.alignment import apply_maps, subject_maps
from ..training.engine import engine_for
from ..training.loso import FoldSpec, run_fold, subject_key
from .attribution import attribute, decision_score
from .concepts import ablation_rows
from .ground_truth import recovery_scores
from .perturbation import aopc, make_domain, perturbation_curves, steps_for
from .randomisation import cascade_similarity, similarity

__all__ = ["FoldInputs", "evaluate_fold", "pick_windows", "shuffled_label_model"]


def pick_windows(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` indices, stratified by class, in ascending order."""
    classes = np.unique(y)
    per = max(1, n // max(len(classes), 1))
    out = [rng.permutation(np.flatnonzero(y == c))[:per] for c in classes]
    return np.sort(np.concatenate(out))


class FoldInputs:
    """Sensor-space windows of one fold and the map to the model's input (plus its inverse
    for relevance, when the model is aligned)."""

    def __init__(self, x: np.ndarray, subjects: np.ndarray, meta: dict[str, Any]) -> None:

        self.x = np.asarray(x, np.float64)
        self.subjects = subjects
        self.ddof = int((meta.get("normalization") or {}).get("ddof", 0))
        alignment = meta.get("alignment") or {"method": "none"}
        self.maps = ({s: np.asarray(m, np.float64) for s, m in alignment["maps"].items()}
                     if alignment.get("method", "none") != "none" else {})
        self._apply = apply_maps

    def model_input(self, x: np.ndarray) -> np.ndarray:

        return normalize_windows(self._apply(x, self.subjects, self.maps), ddof=self.ddof)

    def to_sensor(self, z: np.ndarray, heat: np.ndarray) -> np.ndarray:
        if not self.maps:
            return heat

        aligned = self._apply(self.x, self.subjects, self.maps).astype(np.float64)
        scale = aligned.std(axis=(1, 2), ddof=self.ddof)
        w = np.stack([self.maps[s] for s in self.subjects])
        return sensor_relevance(self.x, z, heat, w, scale)


def _faithfulness(name: str, method: str, model: Any, inputs: FoldInputs, y: np.ndarray,
                  heat: np.ndarray, domains: list[Any], ec: Any, init: str,
                  rng: np.random.Generator) -> tuple[list[dict], list[dict]]:

    # perturbations act on the sensor-space window when the model is aligned (a sensor's
    # channel, not an aligned component, is what a channel means)
    x = inputs.x if inputs.maps else inputs.model_input(inputs.x)

    def score(xw: np.ndarray) -> np.ndarray:
        z = inputs.model_input(xw) if inputs.maps else xw
        return decision_score(model, z, y, init)

    rows, curves = [], []
    for dom in domains:
        unit = dom.relevance(x, heat)
        steps = steps_for(dom.n_units, ec.max_steps)
        orders: dict[str, Any] = {"morf": None, "lerf": None}
        for k in range(ec.n_random):
            orders[f"random{k}"] = np.stack([rng.permutation(dom.n_units) for _ in x])
        result = perturbation_curves(score, x, unit, dom, steps, orders)
        random = np.mean([aopc(result[f"random{k}"]) for k in range(ec.n_random)], axis=0)
        base = np.abs(result["morf"][:, 0]).mean()
        rows.append({"fold": name, "method": method, "domain": dom.name, "n_windows": len(x),
                     "aopc_morf": float(aopc(result["morf"]).mean()),
                     "aopc_lerf": float(aopc(result["lerf"]).mean()),
                     "aopc_random": float(random.mean()),
                     "abpc": float((result["lerf"][:, 1:] - result["morf"][:, 1:]).mean()),
                     "score_scale": float(base)})
        for order, values in result.items():
            if order.startswith("random") and order != "random0":
                continue
            for j, k in enumerate(steps):
                curves.append({"fold": name, "method": method, "domain": dom.name,
                               "order": "random" if order.startswith("random") else order,
                               "removed": int(k), "fraction": float(k / dom.n_units),
                               "score": float(values[:, j].mean())})
    return rows, curves


def evaluate_fold(fold: dict[str, Any], checkpoint: Path, x: np.ndarray, y: np.ndarray,
                   subjects: np.ndarray, onset: np.ndarray, context: dict[str, Any],
                   threads: int | None) -> dict[str, list[dict]]:
    """Every check of one fold (runs in a worker process)."""
    import torch


    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        ec, xc = context["evaluate"], context["explain"]
        model, meta = load_checkpoint(checkpoint, "cpu", sha256=fold["checkpoint_sha256"])
        inputs = FoldInputs(x, subjects, meta)
        z = inputs.model_input(inputs.x)
        # perturbation curves are forwards only: the engine the model was trained with
        # (the same numbers to rounding, much faster); relevance runs on the Sequential
        scorer = engine_for(model, meta.get("training_config", {}).get("engine", "reference"))
        name, sfreq, ch_names = fold["name"], float(meta["sfreq"]), list(meta["ch_names"])
        rng = np.random.default_rng([context["seed"], int(fold["repetition"]),
                                     subject_key(fold["test_subject"])])
        domains = []
        for d in ec.domains:
            removal = ec.channel_removal if context["positions"] is not None else "mean"
            domains.append(make_domain(d, ch_names=ch_names, sfreq=sfreq, n_times=x.shape[-1],
                                       bands=xc.bands, n_segments=ec.n_segments,
                                       channel_removal=removal,
                                       positions=context["positions"]))
        out: dict[str, list[dict]] = {k: [] for k in EVALUATION_TABLES}
        heats = {}
        for method in context["methods"]:
            heat, start = attribute(model, z, y, method, init=xc.init, zero_bias=xc.zero_bias,
                                    layer=xc.layer, ig_steps=ec.ig_steps)
            heat = inputs.to_sensor(z, heat)
            heats[method] = heat
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = heat.sum(axis=(1, 2)) / start
            finite = ratio[np.isfinite(ratio)]
            q = np.percentile(finite, [5, 50, 95]) if finite.size else [np.nan] * 3
            out["conservation"].append({
                "fold": name, "method": method, "n_windows": len(ratio),
                "q05": float(q[0]), "median": float(q[1]), "q95": float(q[2]),
                "flagged": int(np.sum(~(np.abs(ratio - 1) <= ec.conservation_tolerance))),
                "tolerance": ec.conservation_tolerance})
            rows, curves = _faithfulness(name, method, scorer, inputs, y, heat, domains, ec,
                                         xc.init, rng)
            out["aopc"] += [{"fold": r["fold"], "subject": str(fold["test_subject"]), **r}
                            for r in rows]  # the faithfulness test's unit is the subject
            out["curves"] += curves
            truth = context["ground_truth"]
            if truth is not None:
                for c in np.unique(y):
                    rows_c = y == c
                    scores = recovery_scores(heat[rows_c], inputs.x[rows_c], onset[rows_c],
                                             ch_names, sfreq, truth)
                    out["ground_truth"].append({"fold": name, "method": method,
                                                "class": context["classes"][int(c)],
                                                **scores})
        main = f"lrp:{xc.composite}"
        if context["randomise"]:
            def explain(m: Any) -> np.ndarray:
                h, _ = attribute(m, z, y, main, init=xc.init, zero_bias=xc.zero_bias,
                                 layer=xc.layer)
                return inputs.to_sensor(z, h)

            for row in cascade_similarity(model, inputs.x, y, explain, sfreq, xc.bands,
                                          context["seed"]):
                out["randomisation"].append({"fold": name, "check": "cascade", **row})

        out["concept_ablation"] += ablation_rows(
            model, z, y, context["classes"], context["members"], context["total_relevance"],
            layer=xc.layer, init=xc.init, fold=name)
        shuffled = context.get("shuffled_model")
        if shuffled is not None:
            h, _ = attribute(shuffled, z, y, main, init=xc.init, zero_bias=xc.zero_bias,
                             layer=xc.layer)
            sim = similarity(heats[main], inputs.to_sensor(z, h), inputs.x, sfreq, xc.bands)
            out["randomisation"].append({"fold": name, "check": "shuffled_labels",
                                         "step": "shuffled", **sim,
                                         "shuffled_accuracy": context["shuffled_accuracy"]})
    finally:
        torch.set_num_threads(old)
    return out


def shuffled_label_model(fold: dict[str, Any], dataset: Any, config: Any, seed: int
                    ) -> tuple[Any, float]:
    """The fold's model retrained on labels permuted within each training subject."""

    tc = config.training.model_copy(update={"device": "cpu"})
    x, y, groups = dataset.get_data()
    groups = groups.astype(str)
    rng = np.random.default_rng([seed, 99])
    y_perm = y.copy()
    for s in np.unique(groups):
        if s != fold["test_subject"]:
            rows = np.flatnonzero(groups == s)
            y_perm[rows] = rng.permutation(y[rows])
    maps = subject_maps(x, groups, tc.alignment)
    xn = normalize_windows(apply_maps(x, groups, maps), ddof=1 if tc.protocol == "thesis"
                           else 0)
    spec = FoldSpec(int(fold["repetition"]), fold["test_subject"], 0,
                    tuple(fold["train_subjects"]), tuple(fold["val_subjects"]), seed,
                    int(tc.seed if tc.seed is not None else seed))
    shape = {"n_channels": x.shape[1], "n_times": x.shape[2],
             "n_classes": len(dataset.classes), "sfreq": float(dataset.sfreq)}
    result = run_fold(spec, xn, y_perm, groups, None, shape, config.model, tc, None, 1)

    model = build_model(config.model, **shape)
    model.load_state_dict(result["state_dict"])
    return model.eval(), float(result["scores"]["accuracy"])

"""Stage ``explain``: concept relevance (CRP) of every fold model the ``train`` manifest lists.

Per fold it loads the checkpoint (checked against its recorded hash), draws the candidate
windows (``explain.select_from``: the held-out subject's, or the fold's training subjects')
from the verified prepared data, normalises them exactly as the model was trained, and runs
:func:`eegcrp.relevance.fold.explain_fold` into ``explain/folds/<fold>.h5``. Folds run
through :func:`eegcrp.parallel.parallel_map` and the manifest is rewritten after each, so a
killed run resumes; a fold file is reused only when its attributes name the current stage
identity and the checkpoint it explains, and it opens as HDF5.

The manifest's ``extra`` holds the fold records (repetition, held-out subject, file, counts,
conservation, and the threads, device and wall time it ran with, which the fold files do not
hold: same inputs give the same bytes), the channel names with positions and the ground truth of
simulated data, so that later stages never reload the dataset to draw or score anything.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ExplainConfig
from ..errors import ExplainError
from .manifest import Manifest
from .prepare import load_prepared
from .registry import Stage, StageContext, register, stage_folder
from .train import fold_records

logger = logging.getLogger(__name__)

__all__ = ["FOLD_RECORD_KEYS"]

#: Fold attributes copied into the manifest.
FOLD_RECORD_KEYS = ("repetition", "subject", "file", "n_samples", "n_pairs",
                    "conservation_upper", "conservation_lower", "layer_over_logit",
                    "input_over_layer", "n_flagged", "wall_time_s", "device", "threads")


def _window_columns(dataset: Any, subjects: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Trial id and onset (s within the trial) of every window of ``subjects``."""
    trials, onsets = [], []
    for s in subjects:
        meta = dataset[s].metadata
        n = len(dataset[s])
        trials.append(meta["trial"].to_numpy(np.int64) if meta is not None and "trial" in meta
                      else np.full(n, -1, np.int64))
        col = next((c for c in ("onset", "window_start") if meta is not None and c in meta),
                   None)
        onsets.append(meta[col].to_numpy(np.float64) if col else np.full(n, np.nan))
    return np.concatenate(trials), np.concatenate(onsets)


def _fold_file_ok(path: Path, identity: str, checkpoint_sha: str) -> bool:
    """Whether an existing fold file is complete and belongs to this identity and model."""
    from ..store import read_fold_attrs

    if not path.is_file():
        return False
    try:
        attrs = read_fold_attrs(path)
    except Exception:  # an unreadable or truncated HDF5 file
        return False
    # conservation is written with the last attributes: a file without it is incomplete
    return (attrs.get("identity") == identity and attrs.get("checkpoint_sha256") == checkpoint_sha
            and "conservation_lower" in attrs)


def _fold_data(x: np.ndarray, y: np.ndarray, subjects: np.ndarray, trial: np.ndarray,
               onset: np.ndarray, meta: dict[str, Any], ddof: int) -> Any:
    """The model input of the windows, with the sensor-space layer of an aligned model."""
    from ..relevance.alignment import SensorLayer
    from ..relevance.fold import FoldData
    from ..training import normalize_windows
    from ..training.alignment import apply_maps

    alignment = meta.get("alignment") or {"method": "none"}
    if alignment.get("method", "none") == "none":
        return FoldData(normalize_windows(x, ddof=ddof), y, subjects, trial, onset)
    maps = {s: np.asarray(m, np.float64) for s, m in alignment["maps"].items()}
    missing = sorted(set(subjects.tolist()) - set(maps))
    if missing:
        raise ExplainError(f"the checkpoint has no alignment map of subject(s) {missing}; "
                           "re-run `eegcrp train`")
    aligned = apply_maps(x, subjects, maps)
    order = sorted(maps)
    index = np.array([order.index(s) for s in subjects.tolist()])
    scale = aligned.astype(np.float64).std(axis=(1, 2), ddof=ddof)
    scale[~(scale > 0)] = 1.0
    sensor = SensorLayer(np.asarray(x, np.float64), np.stack([maps[s] for s in order]), index,
                         scale)
    return FoldData(normalize_windows(aligned, ddof=ddof), y, subjects, trial, onset, sensor)


def _explain_one(fold: dict[str, Any], checkpoint: Path, x: np.ndarray, y: np.ndarray,
                 subjects: np.ndarray, trial: np.ndarray, onset: np.ndarray,
                 config: ExplainConfig, out_path: Path, attrs: dict[str, Any],
                 threads: int | None) -> dict[str, Any]:
    """Explain one fold (runs in a worker process)."""
    import torch

    from ..io import load_checkpoint
    from ..relevance.fold import explain_fold
    from ..training import resolve_device

    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        try:
            device = resolve_device(config.device, key="explain.device")
        except Exception as exc:
            raise ExplainError(str(exc)) from None
        model, meta = load_checkpoint(checkpoint, device, sha256=fold["checkpoint_sha256"])
        if list(meta["ch_names"]) != list(attrs["ch_names"]) or int(meta["n_times"]) != \
                x.shape[-1]:
            raise ExplainError(
                f"{checkpoint.name} was trained on {len(meta['ch_names'])} channels x "
                f"{meta['n_times']} samples, the prepared data have {x.shape[1]} x "
                f"{x.shape[-1]}; re-run `eegcrp train` on these data"
            )
        norm = meta.get("normalization") or {}
        if norm.get("method", "zscore_window") != "zscore_window":
            raise ExplainError(f"{checkpoint.name}: unknown input normalisation {norm}; retrain")
        data = _fold_data(x, y, subjects, trial, onset, meta, int(norm.get("ddof", 0)))
        out = explain_fold(model, data, config, out_path, classes=list(meta["classes"]),
                           sfreq=float(meta["sfreq"]), device=device, attrs=attrs)
    finally:
        torch.set_num_threads(old)
    logger.info("%s: %d windows, %d heatmaps, conservation error start->layer %.2g, "
                "layer->input %.2g (%.1f s)", out_path.name, out["n_samples"], out["n_pairs"],
                out["conservation_upper"], out["conservation_lower"], out["wall_time_s"])
    return {"name": fold["name"], **{k: out.get(k) for k in FOLD_RECORD_KEYS}}


def _run(ctx: StageContext) -> dict[str, Any]:
    from ..parallel import parallel_map

    config = ctx.config
    ec = config.explain
    train: Manifest = ctx.inputs["train"]
    prepared: Manifest = ctx.inputs["prepare"]
    train_dir = stage_folder(ctx.config, "train")
    dataset = load_prepared(prepared)
    folds = fold_records(train)
    if not folds:
        raise ExplainError(f"the train manifest in {train_dir} lists no folds; run "
                           "`eegcrp train` first")
    out_dir = ctx.folder / "folds"
    out_dir.mkdir(parents=True, exist_ok=True)
    identity = ctx.manifest.identity
    records: dict[str, Any] = {}
    ctx.manifest.extra = {
        "folds": records,
        "order": [f["name"] for f in folds],
        "classes": list(dataset.classes),
        "channels": prepared.extra["channels"],
        "ground_truth": prepared.extra.get("info", {}).get("ground_truth"),
        "layer": ec.layer,
        "init": ec.init,
    }
    pending = []
    for fold in folds:
        path = out_dir / f"{fold['name']}.h5"
        if _fold_file_ok(path, identity, fold["checkpoint_sha256"]):
            from ..store import read_fold_attrs

            attrs = read_fold_attrs(path)
            # where it ran is not in the file: keep what the last manifest recorded
            ran = (ctx.previous.extra.get("folds", {}).get(fold["name"], {})
                   if ctx.previous is not None else {})
            records[fold["name"]] = {"name": fold["name"],
                                     **{k: attrs.get(k, ran.get(k)) for k in FOLD_RECORD_KEYS}}
            ctx.manifest.add_product(ctx.folder, f"folds/{path.name}")
        else:
            pending.append(fold)
    ctx.save()
    logger.info("explain: %d folds, %d done, %d to compute (layer %s, composite %s, init %s)",
                len(folds), len(folds) - len(pending), len(pending), ec.layer, ec.composite,
                ec.init)

    def tasks():
        for fold in pending:
            subjects = ([fold["test_subject"]] if ec.select_from == "test"
                        else list(fold["train_subjects"]))
            x, y, groups = dataset.get_data(subjects)
            trial, onset = _window_columns(dataset, subjects)
            attrs = {"identity": identity, "name": fold["name"],
                     "repetition": int(fold["repetition"]), "subject": fold["test_subject"],
                     "file": f"{fold['name']}.h5", "checkpoint": fold["checkpoint"],
                     "checkpoint_sha256": fold["checkpoint_sha256"],
                     "subjects": subjects, "ch_names": list(dataset.ch_names)}
            yield (fold, train_dir / "folds" / fold["checkpoint"], x, y.astype(np.int64),
                   groups.astype(str), trial, onset, ec, out_dir / f"{fold['name']}.h5", attrs)

    from tqdm.auto import tqdm

    with tqdm(total=len(folds), initial=len(folds) - len(pending), desc="explain folds",
              unit="fold", disable=not ctx.progress) as bar:
        for rec in parallel_map(_explain_one, tasks(), ec, n_tasks=len(pending),
                                what="folds to explain"):
            records[rec["name"]] = rec
            ctx.manifest.add_product(ctx.folder, f"folds/{rec['file']}")
            ctx.save()
            bar.update()
    ctx.manifest.extra["folds"] = {f["name"]: records[f["name"]] for f in folds}
    return {"computed": [f["name"] for f in pending], "folds": list(records)}


def _load(ctx: StageContext) -> dict[str, Any]:
    return {"computed": [], "folds": list(ctx.manifest.extra.get("order", []))}


def _check(config: Any, inputs: dict[str, Any]) -> None:
    """An absent device refuses the stage before any result is touched."""
    from ..training import resolve_device

    resolve_device(config.explain.device, key="explain.device")


def _report(report: Any, ctx: Any) -> None:
    from ..report.relevance_section import add_relevance_section

    add_relevance_section(report, ctx)


def _describe(result: dict[str, Any], config: Any) -> str:
    done = len(result["folds"]) - len(result["computed"])
    return (f"explained {len(result['computed'])} fold(s), {done} already done; results in "
            f"{config.output_dir}/explain")


STAGE = register(Stage(
    name="explain",
    help="concept relevance (CRP) of every trained fold",
    folder="explain",
    sections=("explain",),
    ignore={"explain": ("batch_size",)},
    requires=("prepare", "train"),
    run=_run,
    report=_report,
    format=2,
    describe=_describe,
    load=_load,
    check=_check,
))

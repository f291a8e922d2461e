"""Stage ``sources``: relevance of independent components, brain vs non-brain (pipeline C).

1. Per subject whose windows the explain store selected: ICA of the cached continuous data
   with ICLabel labels (:func:`eegcrp.sources.fit_subject`), ``sources/ica/sub-<id>.nc``;
   a decomposition of the same recording with the same settings kept in the cache by an
   earlier study is copied instead of fitted again (:mod:`eegcrp.sources.reuse`).
   Subjects run through :func:`eegcrp.parallel.parallel_map`; a subject whose ICA fails
   (does not converge) is recorded in ``extra["failed"]`` and the others go on.
2. Per explain fold: every selected heatmap through the ICA virtual layer
   (:func:`eegcrp.sources.folds.fold_sources`), ``sources/folds/<fold>.nc``.
3. The unit table and the category shares per class, over all classes and per subject,
   with bootstrap intervals across subjects (``units.csv``, ``shares.csv``,
   ``subject_shares.csv``), and the per-component table ``components.csv``.

Files are reused on a re-run when their ``identity`` attribute is this stage's identity.
Layout and reader: :mod:`eegcrp.sources.results`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import SourcesConfig
from .manifest import Manifest
from .prepare import cache_files_of, load_prepared
from .registry import Stage, StageContext, register, stage_folder

logger = logging.getLogger(__name__)

__all__: list[str] = []


def _limits(threads: int | None) -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(int(threads or 1))


def _ica_settings(sc: SourcesConfig) -> dict[str, Any]:
    """The arguments of :func:`eegcrp.sources.fit_subject` besides the data."""
    return {"method": sc.method, "n_components": sc.n_components, "band": list(sc.band),
            "data": sc.data, "max_iter": sc.max_iter, "seed": int(sc.seed or 0),
            "min_samples_factor": sc.min_samples_factor}


def _fit_task(subject: str, prepared: Manifest, sc: SourcesConfig, out_path: Path,
              identity: str, threads: int | None) -> dict[str, Any]:
    """Fit and label one subject's ICA, or reuse the one kept in the cache (in a worker)."""
    from ..preprocessing.cache import load_continuous
    from ..sources import SourcesError
    from ..sources.reuse import fit_or_recall

    start = time.perf_counter()
    folder, files = cache_files_of(prepared)
    try:
        ica, reused = fit_or_recall(
            subject, lambda: load_continuous(load_prepared(prepared, [subject]), subject),
            files[subject]["sha256"]["continuous"], folder, _ica_settings(sc), threads)
    except SourcesError as exc:
        logger.warning("subject %s left out of the sources stage: %s", subject, exc)
        return {"subject": subject, "ok": False, "error": str(exc)}
    ica.save(out_path, {"identity": identity})
    return {"subject": subject, "ok": True, **_ica_record(ica, out_path),
            "reused_from_cache": reused, "wall_time_s": round(time.perf_counter() - start, 3)}


def _ica_record(ica: Any, path: Path) -> dict[str, Any]:
    return {"file": f"ica/{path.name}", **ica.record()}


def _fold_task(fold_path: Path, ica_files: dict[str, Path | None], prepared: Manifest,
               standardized: bool, ddof: int, out_path: Path, attrs: dict[str, Any],
               threads: int | None) -> dict[str, Any]:
    """ICA relevance of one explain fold (runs in a worker)."""
    from ..sources import SubjectICA
    from ..sources.folds import fold_sources
    from ..store import FoldRelevance

    start = time.perf_counter()
    with _limits(threads):
        fold = FoldRelevance(fold_path)
        have = [s for s, p in ica_files.items() if p is not None]
        data = load_prepared(prepared, have) if have else None
        windows = {s: data[s] for s in have} if data is not None else {}
        icas = {s: SubjectICA.load(p) if p is not None else None for s, p in ica_files.items()}
        rec = fold_sources(fold, icas, windows, out_path, standardized=standardized,
                           ddof=ddof, attrs=attrs)
    rec["wall_time_s"] = round(time.perf_counter() - start, 3)
    return rec


def _file_identity(path: Path) -> str | None:
    """The stage identity a subject's ICA file was written with; None when unreadable."""
    from ..sources import SubjectICA

    return SubjectICA.stored_attribute(path, "identity")  # None: missing or damaged


def _run(ctx: StageContext) -> dict[str, Any]:
    from ..concepts import load_concepts
    from ..parallel import parallel_map
    from ..sources import SourcesError, SubjectICA, check_channels, study_conditions
    from ..sources.folds import component_table, file_attrs, unit_table_of, window_subjects
    from ..sources.shares import group_shares, headline, subject_shares
    from ..store import open_relevance

    config = ctx.config
    sc = config.sources
    if not sc.enabled:
        ctx.manifest.extra = {"skipped": "sources.enabled is false"}
        return {"skipped": True}
    if config.preprocessing.zscore:
        raise SourcesError("the sources stage decomposes windows in volts, but "
                           "preprocessing.zscore is true; set it to false (the training "
                           "stage z-scores every window itself, so the models stay the same)")
    prepared: Manifest = ctx.inputs["prepare"]
    run = open_relevance(stage_folder(config, "explain"))
    if not run.folds:
        raise SourcesError("the explain store lists no folds; run `eegcrp explain` first")
    per_fold = {fold.name: window_subjects(fold) for fold in run.folds}
    subjects = sorted({s for v in per_fold.values() for s in v})
    check_channels(load_prepared(prepared, [subjects[0]])[subjects[0]].info)
    identity = ctx.manifest.identity
    t0 = time.perf_counter()
    records: dict[str, Any] = {}
    failed: dict[str, str] = {}
    ctx.manifest.extra = {"subjects": records, "failed": failed}
    pending = []
    for s in subjects:
        path = ctx.folder / "ica" / f"sub-{s}.nc"
        if _file_identity(path) == identity:
            records[s] = {"subject": s, "ok": True, **_ica_record(SubjectICA.load(path), path)}
            ctx.manifest.add_product(ctx.folder, records[s]["file"])
        else:
            pending.append(s)
    ctx.save()
    logger.info("sources: ICA of %d subjects (%d already in the run folder), %s, "
                "n_components %s", len(subjects), len(subjects) - len(pending), sc.method,
                sc.n_components)
    tasks = ((s, prepared, sc, ctx.folder / "ica" / f"sub-{s}.nc", identity)
             for s in pending)
    for rec in parallel_map(_fit_task, tasks, sc, n_tasks=len(pending), what="subject ICAs"):
        if rec.get("reused_from_cache"):
            logger.info("sources: the ICA of subject %s is the one kept in the cache (same "
                        "recording and settings)", rec["subject"])
        if rec["ok"]:
            records[rec["subject"]] = rec
            ctx.manifest.add_product(ctx.folder, rec["file"])
        else:
            failed[rec["subject"]] = rec["error"]
        ctx.save()
    ctx.manifest.extra["subjects"] = {s: records[s] for s in subjects if s in records}
    ctx.manifest.extra["failed"] = {s: failed[s] for s in subjects if s in failed}
    if not records:
        raise SourcesError("the ICA failed for every subject: " + "; ".join(
            f"{s}: {m}" for s, m in failed.items()))
    ctx.manifest.extra["iclabel_conditions"] = study_conditions(
        ctx.manifest.extra["subjects"], car=config.preprocessing.car,
        min_channels=sc.iclabel_min_channels, samples_factor=sc.min_samples_factor)
    notes = Counter(n for r in records.values() for n in r.get("notes", []))
    for note, count in notes.items():
        logger.warning("%s (%d of %d subjects)", note, count, len(records))
    t1 = time.perf_counter()

    ica_files = {s: ctx.folder / records[s]["file"] if s in records else None
                 for s in subjects}
    standardized = run.meta.get("input_space", "model") != "sensor"
    ddof = 1 if config.training.protocol == "thesis" else 0
    fold_recs: dict[str, Any] = {}
    ctx.manifest.extra.update(folds=fold_recs, order=run.names,
                              input_space="model" if standardized else "sensor")
    todo = []
    def with_ica(fold: Any) -> str:  # a fold file is reused only with the same ICAs
        return json.dumps([s for s in per_fold[fold.name] if ica_files[s] is not None])

    for fold in run.folds:
        path = ctx.folder / "folds" / f"{fold.name}.nc"
        attrs = file_attrs(path, ("identity", "ica_subjects", "n_pairs", "n_skipped",
                                  "error_max", "error_median")) or {}
        if attrs.get("identity") == identity and attrs.get("ica_subjects") == with_ica(fold):
            fold_recs[fold.name] = {k: attrs[k] for k in ("n_pairs", "n_skipped", "error_max",
                                                          "error_median")}
            fold_recs[fold.name]["file"] = f"folds/{path.name}"
            ctx.manifest.add_product(ctx.folder, fold_recs[fold.name]["file"])
        else:
            todo.append(fold)
    ftasks = ((fold.path, {s: ica_files[s] for s in per_fold[fold.name]}, prepared,
               standardized, ddof, ctx.folder / "folds" / f"{fold.name}.nc",
               {"identity": identity, "ica_subjects": with_ica(fold)}) for fold in todo)
    for rec in parallel_map(_fold_task, ftasks, sc, n_tasks=len(todo),
                            what="folds through the ICA layer"):
        fold_recs[rec["name"]] = {"file": f"folds/{rec['name']}.nc",
                                  **{k: rec[k] for k in ("n_pairs", "n_skipped", "error_max",
                                                         "error_median", "wall_time_s")}}
        ctx.manifest.add_product(ctx.folder, fold_recs[rec["name"]]["file"])
        ctx.save()
    ctx.manifest.extra["folds"] = {n: fold_recs[n] for n in run.names}
    t2 = time.perf_counter()

    files = [ctx.folder / fold_recs[n]["file"] for n in run.names]
    units = unit_table_of(files)
    seed = int(sc.seed or 0)
    per_class = group_shares(units, None, n_boot=sc.n_boot, ci=sc.ci, seed=seed)
    everything = {k: "all" for k in units["key"].unique()}
    clusters = load_concepts(ctx.config.output_dir).pooled_groups()
    shares = pd.concat([per_class, group_shares(units, everything, n_boot=sc.n_boot,
                                                ci=sc.ci, seed=seed),
                        group_shares(units, clusters, n_boot=sc.n_boot, ci=sc.ci,
                                     seed=seed)], ignore_index=True)
    subj = pd.concat([subject_shares(units, None), subject_shares(units, everything),
                      subject_shares(units, clusters)], ignore_index=True)
    icas = {s: SubjectICA.load(ctx.folder / records[s]["file"]) for s in records}
    for frame, name in ((units, "units.csv"), (shares, "shares.csv"),
                        (subj, "subject_shares.csv"), (component_table(files, icas),
                                                       "components.csv")):
        ctx.write_csv(frame, name)
    errors = [r["error_max"] for r in fold_recs.values() if np.isfinite(r["error_max"])]
    ctx.manifest.extra.update(
        summary=headline(shares), conservation_error_max=max(errors, default=float("nan")),
        notes=[{"note": n, "subjects": c} for n, c in notes.items()],
        wall_time_s={"ica": round(t1 - t0, 3), "layer": round(t2 - t1, 3),
                     "shares": round(time.perf_counter() - t2, 3)},
    )
    return {"subjects": sorted(records), "failed": dict(failed),
            "summary": ctx.manifest.extra["summary"]}


def _report(report: Any, ctx: Any) -> None:
    from ..report.sources_section import add_sources_section

    add_sources_section(report, ctx)


def _describe(result: dict[str, Any], config: Any) -> str:
    if result.get("skipped"):
        return "sources: skipped (sources.enabled is false)"
    lines = [f"ICA of {len(result['subjects'])} subject(s)"
             + (f"; failed: {', '.join(result['failed'])}" if result["failed"] else "")]
    for group, rec in result["summary"].items():
        b = rec["hard/positive"]["brain"]
        lines.append(f"  {group}: brain share of positive relevance {100 * b[0]:.1f} % "
                     f"[{100 * b[1]:.1f}, {100 * b[2]:.1f}]")
    lines.append(f"results in {config.output_dir}/sources")
    return "\n".join(lines)


STAGE = register(Stage(
    name="sources",
    help="ICA + ICLabel per subject; relevance of brain vs non-brain components",
    folder="sources",
    sections=("sources",),
    requires=("prepare", "explain", "concepts"),
    run=_run,
    report=_report,
    describe=_describe,
))

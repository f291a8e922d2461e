"""Stage ``controls``: the study retrained under each declared control (:mod:`eegcrp.controls`).

For each control the study's config with the control's overrides runs ``prepare`` and
``train`` in ``controls/<name>/`` (its own run folder, with manifests; the study's cache),
and each held-out subject's score is compared with the study's (:func:`eegcrp.controls.
compare`). A control whose data cannot be prepared (e.g. trials too short for the time
control) is recorded with the reason and the others go on. Products: ``subjects.csv`` (per
control and held-out subject: study, control, change) and ``summary.csv`` (per control:
means, change with its interval, paired test, share of the above-chance score removed,
verdict, the options that rerun the study under it). Off unless ``controls.enabled``.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ..errors import DataError
from .manifest import Manifest
from .registry import Stage, StageContext, register, run_stage, stage_folder

logger = logging.getLogger(__name__)

__all__: list[str] = []


#: Balanced accuracy: on a class-balanced test set it equals accuracy, on an imbalanced one
#: it keeps chance at 1 / n_classes.
SCORE = "balanced_accuracy"


SAME_WINDOWS = ("its prepared windows equal the study's: the data hold nothing it removes "
                "(e.g. a source its provider filtered to that band already)")


def _same_windows(study: Manifest, control: Manifest) -> bool:
    """Whether the control's prepared windows are byte for byte the study's (the prepare
    manifests record each subject's cached windows' SHA-256)."""
    theirs = study.extra.get("digest_extra", {})
    ours = control.extra.get("digest_extra", {})
    return bool(theirs) and set(theirs) == set(ours) and all(
        theirs[s].get("windows") == ours[s].get("windows") for s in theirs)


def _scores(run_dir: Any) -> pd.Series:
    from ..results import load_training

    return load_training(run_dir).metrics.groupby("test_subject")[SCORE].mean()


def _run(ctx: StageContext) -> dict[str, Any]:
    from ..controls import compare, control_config, declared_controls

    config = ctx.config
    cc = config.controls
    if not cc.enabled:
        ctx.manifest.extra = {"skipped": "controls.enabled is false (run them with "
                                         "`eegcrp run CONFIG --controls`)"}
        return {"skipped": True}
    prepared = ctx.inputs["prepare"].extra
    classes = list(prepared["dataset"]["classes"])
    main = _scores(stage_folder(config, "train"))
    rows, summary = [], []
    for control in declared_controls(config, list(prepared["channels"]["names"]),
                                     prepared["dataset"].get("task")):
        record = {"control": control.name, "description": control.description,
                  "options": control.set_options(), "folder": f"{control.name}/"}
        if control.skip:
            summary.append({**record, "verdict": "not run", "reason": control.skip})
            continue
        sub = control_config(config, control)
        logger.info("controls: retraining the study with %s (%s)", control.description,
                    control.set_options())
        reason = ""
        try:
            run_stage("prepare", sub, progress=ctx.progress)
            if _same_windows(ctx.inputs["prepare"], Manifest.read(stage_folder(sub, "prepare"))):
                reason = SAME_WINDOWS
            else:
                run_stage("train", sub, progress=ctx.progress)
        except DataError as exc:  # e.g. trials too short for the time control
            logger.warning("control %s not run: %s", control.name, exc)
            reason = str(exc)
        for path in sorted(sub.output_dir.rglob("*")):  # the control's own run folder
            if path.is_file():
                ctx.manifest.add_product(ctx.folder, path.relative_to(ctx.folder).as_posix())
        if reason:
            summary.append({**record, "verdict": "not run", "reason": reason})
            continue
        per, rec = compare(main, _scores(sub.output_dir), chance=1 / len(classes),
                           alpha=cc.alpha, confound_share=cc.confound_share)
        rows.append(per.assign(control=control.name))
        summary.append({**record, "score": SCORE, **rec, "reason": ""})
    columns = ["control", "subject", "study_score", "control_score", "change"]
    subjects = pd.concat(rows, ignore_index=True)[columns] if rows else \
        pd.DataFrame(columns=columns)
    ctx.write_csv(subjects, "subjects.csv")
    ctx.write_csv(pd.DataFrame(summary), "summary.csv")
    ctx.manifest.extra = {"controls": summary, "score": SCORE}
    return {"controls": summary}


def _describe(result: dict[str, Any], config: Any) -> str:
    if result.get("skipped"):
        return "controls: skipped (controls.enabled is false)"
    lines = [f"controls: {len(result['controls'])} retrained; results in "
             f"{config.output_dir}/controls"]
    for rec in result["controls"]:
        if rec["verdict"] == "not run":
            lines.append(f"  {rec['control']:9s} not run: {rec['reason']}")
            continue
        lines.append(f"  {rec['control']:9s} {rec['description']}: {rec['study_score']:.3f} "
                     f"-> {rec['control_score']:.3f} ({rec['verdict']}, p = {rec['p']:.3g})")
    return "\n".join(lines)


def _check(config: Any, inputs: dict[str, Manifest]) -> None:
    """Refuse controls the data cannot have (named channels they lack, a band above
    Nyquist) before anything is written."""
    from ..controls import declared_controls

    if config.controls.enabled and "prepare" in inputs:
        prepared = inputs["prepare"].extra
        declared_controls(config, list(prepared["channels"]["names"]),
                          prepared["dataset"].get("task"))


def _load(ctx: StageContext) -> dict[str, Any] | None:
    extra = ctx.manifest.extra
    if "skipped" in extra:  # enabled now: run them (enabled is not part of the identity)
        return None if ctx.config.controls.enabled else {"skipped": True}
    return {"controls": extra["controls"]}


def _report(report: Any, ctx: Any) -> None:
    from ..report.controls_section import add_controls_section

    add_controls_section(report, ctx)


STAGE = register(Stage(
    name="controls",
    help="retrain the study under confound controls (band, channels, time) and compare",
    folder="controls",
    sections=("controls",),
    # switching the controls on runs them; it changes nothing they compute
    ignore={"controls": ("enabled",)},
    requires=("prepare", "train"),
    run=_run,
    report=_report,
    describe=_describe,
    load=_load,
    check=_check,
))

"""The stage registry: every stage declared once; the CLI, ``eegcrp run`` and the report are
built from it.

A :class:`Stage` names its config sections, the stages it reads, its output folder, its run
function and its report section. :func:`run_stage` does what every stage shares: check the
upstream manifests, refuse (or, with ``overwrite``, replace) own results of another
configuration, run the stage's own checks, write ``config.yaml`` once the checks passed, run,
and finish the manifest. Adding a stage is one module with a run function plus one
:func:`register` call.

Nothing lost. A command that is refused changes nothing: the checks (upstream manifests,
own results of another configuration, the stage's :attr:`Stage.check`) run before anything
is written or removed; ``overwrite`` moves the old results aside and deletes them only once
the stage finished, and puts them back when it fails or is interrupted; a run that fails
before it produced anything removes the manifest it started and restores ``config.yaml``.
A manifest that is incomplete and lists no product is no result: it never blocks another
configuration, and an automatic stage (``prepare``) left that way is simply run again.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import StudyConfig, config_hash
from ..config.stages import ParallelSection
from ..errors import StageError
from ..io import (
    TMP_PREFIX,
    package_version,
    remove_temporary,
    write_bytes_atomic,
    write_csv_atomic,
    write_text_atomic,
)
from .manifest import MANIFEST_NAME, Manifest, mismatch_error, stale_files

logger = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "Stage",
    "StageContext",
    "expected_identity",
    "register",
    "require",
    "run_stage",
    "stage_folder",
    "stage_sections",
]


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    Attributes
    ----------
    name : str
        CLI subcommand and manifest ``stage``.
    help : str
        One line for ``eegcrp --help``.
    folder : str
        Output subfolder of ``output_dir``.
    sections : tuple of str
        Config sections whose values decide the stage's results.
    ignore : dict
        Per section, further fields that do not change results (batch sizes, repetitions,
        report-only settings) and stay out of the identity; the fields of a
        :class:`~eegcrp.config.stages.ParallelSection` are always left out.
    requires : tuple of str
        Stages whose results this stage reads (checked before it runs).
    run : callable
        ``run(ctx: StageContext) -> Any``; records its products in ``ctx.manifest``.
    report : callable | None
        ``report(report: mne.Report, ctx: ReportContext)`` adding the stage's section.
    format : int
        Version of the stage's output layout (part of the identity).
    auto : bool
        Run it automatically when a later stage needs it and it has not run (cheap, cached).
    runs_missing : bool
        Whether running this stage may run missing ``auto`` upstream stages (the report
        may not: on a folder where nothing ran it says so instead).
    extra_identity : callable | None
        ``f(config) -> dict`` of further values that decide the results (e.g. a cache key).
    describe : callable | None
        ``f(result, config) -> str``: what the CLI prints after the stage ran.
    load : callable | None
        ``f(ctx) -> result`` from the stage's finished products, or None when they do not
        cover what this config asks for: a stage that has one is skipped when it is up to
        date (same identity, same inputs, intact products, ``load`` not None).
    check : callable | None
        ``f(config, inputs)`` raising an :class:`~eegcrp.errors.EEGCRPError` for whatever
        would make the stage fail that can be known before it runs (an absent device, a
        split that leaves no training subject, windows too short for the model). Called
        twice, before anything is written or removed: with ``inputs={}`` before upstream
        stages run automatically (checks of the config alone), then with the verified
        upstream manifests.
    """

    name: str
    help: str
    folder: str
    sections: tuple[str, ...]
    run: Callable[[StageContext], Any]
    requires: tuple[str, ...] = ()
    ignore: dict[str, tuple[str, ...]] = field(default_factory=dict)
    report: Callable[..., None] | None = None
    format: int = 1
    auto: bool = False
    runs_missing: bool = True
    extra_identity: Callable[[StudyConfig], dict[str, Any]] | None = None
    describe: Callable[[Any, StudyConfig], str] | None = None
    load: Callable[[StageContext], Any] | None = None
    check: Callable[[StudyConfig, dict[str, Manifest]], None] | None = None


#: Registered stages in pipeline order.
STAGES: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add ``stage`` to :data:`STAGES` (its requirements must be registered already)."""
    unknown = [r for r in stage.requires if r not in STAGES]
    if unknown:
        raise ValueError(f"stage {stage.name!r} requires unregistered stages {unknown}")
    STAGES[stage.name] = stage
    return stage


def stage_folder(config: StudyConfig, name: str) -> Path:
    """``<output_dir>/<stage folder>``."""
    return Path(config.output_dir) / STAGES[name].folder


def stage_folders(config: StudyConfig) -> dict[str, Path]:
    """Every stage's folder, in pipeline order."""
    return {name: stage_folder(config, name) for name in STAGES}


def stage_sections(stage: Stage, config: StudyConfig) -> dict[str, Any]:
    """The config values that decide a stage's results (identity input, manifest ``config``)."""
    out: dict[str, Any] = {}
    for section in stage.sections:
        value = getattr(config, section)
        dump = value.model_dump(mode="json")
        if isinstance(dump, dict):
            # where and how a stage runs never decides its results: every parallel setting
            # (workers, backend, device, threads) is left out here, once for all stages
            skip = set(stage.ignore.get(section, ()))
            if isinstance(value, ParallelSection):
                skip |= set(ParallelSection.model_fields)
            dump = {k: v for k, v in dump.items() if k not in skip}
        out[section] = dump
    if stage.extra_identity is not None:
        out.update(stage.extra_identity(config))
    return out


def expected_identity(name: str, config: StudyConfig) -> str:
    """The identity the stage's results have when computed with ``config``."""
    stage = STAGES[name]
    return config_hash({
        "stage": name,
        "format": stage.format,
        "config": stage_sections(stage, config),
        "upstream": {r: expected_identity(r, config) for r in stage.requires},
    })


def require(name: str, config: StudyConfig, *, hashes: bool = True) -> Manifest:
    """The verified manifest of stage ``name`` for ``config`` (see :mod:`.manifest`).

    Raises
    ------
    StageError
        When the stage has not run (completely), ran with another configuration, its files
        are missing or changed, or its own inputs changed since it ran.
    """
    stage = STAGES[name]
    folder = stage_folder(config, name)
    manifest = Manifest.read(folder)
    rerun = f"re-run `eegcrp {name} CONFIG` with this config"
    if manifest is None:
        raise StageError(f"no {name} results in {folder}; run `eegcrp {name} CONFIG` (or "
                         "`eegcrp run CONFIG`) with this config and --out first")
    if manifest.identity != expected_identity(name, config):
        raise mismatch_error(
            name, folder, manifest.config, stage_sections(stage, config),
            f"Run this command with the config these results were made with "
            f"({Path(config.output_dir) / 'config.yaml'}), or {rerun} (add --overwrite to "
            "replace them).",
        )
    if not manifest.complete:
        raise StageError(f"the {name} stage in {folder} did not finish; {rerun} to resume it")
    problems = manifest.check_products(folder, hashes=hashes)
    if problems:
        raise StageError(f"{name} results in {folder} are damaged: " + "; ".join(problems)
                         + f"; {rerun} (finished parts are reused)")
    for upstream, recorded in manifest.inputs.items():
        current = Manifest.read(stage_folder(config, upstream))
        if current is None or current.digest != recorded.get("digest"):
            raise StageError(
                f"the {name} results in {folder} were computed from {upstream} results that "
                f"have changed or gone since; {rerun} (add --overwrite if it refuses)"
            )
    return manifest


@dataclass
class StageContext:
    """What a stage's run function gets.

    Attributes
    ----------
    config : StudyConfig
    folder : Path
        The stage's output folder.
    manifest : Manifest
        The stage's manifest being written (record products here).
    inputs : dict of str to Manifest
        The verified upstream manifests.
    progress, overwrite : bool
    previous : Manifest | None
        The stage's manifest of an earlier run with the same identity (resume), else None.
    """

    config: StudyConfig
    folder: Path
    manifest: Manifest
    inputs: dict[str, Manifest]
    progress: bool = True
    overwrite: bool = False
    previous: Manifest | None = None

    def save(self) -> None:
        """Write the manifest as it stands (call after each finished unit of work)."""
        self.manifest.write(self.folder)

    def write_csv(self, frame: Any, name: str, index: bool = False) -> None:
        """Write a product table ``<folder>/<name>`` atomically and record it."""
        write_csv_atomic(self.folder / name, frame, index=index)
        self.manifest.add_product(self.folder, name)


def save_config(config: StudyConfig) -> Path:
    """Write the validated configuration to ``<output_dir>/config.yaml`` (atomically)."""
    target = Path(config.output_dir) / "config.yaml"
    write_text_atomic(target, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return target


def _upstream(name: str, config: StudyConfig, progress: bool, replace_other: bool = False
              ) -> dict[str, Manifest]:
    """Verified manifests of the stages ``name`` reads; runs missing automatic ones.

    A missing stage that is not automatic is an error before anything runs.
    """
    stage = STAGES[name]
    absent = [u for u in stage.requires if Manifest.read(stage_folder(config, u)) is None]
    if absent and not stage.runs_missing:
        missing = absent
    else:  # an automatic stage that did not finish (killed) is resumed like a missing one
        missing = [u for u in stage.requires if u in absent or (
            STAGES[u].auto and not Manifest.read(stage_folder(config, u)).complete)]
    if missing and not stage.runs_missing:
        raise StageError(
            f"nothing has been run in {config.output_dir} (no {missing[0]} results); run "
            f"`eegcrp run CONFIG --out {config.output_dir}` first"
        )
    for upstream in missing:
        if not STAGES[upstream].auto:
            require(upstream, config)  # raises: says which command to run
    for upstream in missing:
        logger.info("stage %s has not run in %s; running it first", upstream, config.output_dir)
        run_stage(upstream, config, progress=progress, replace_other=replace_other)
    return {upstream: require(upstream, config) for upstream in stage.requires}


def run_stage(name: str, config: StudyConfig, *, progress: bool = True,
              overwrite: bool = False, replace_other: bool = False) -> Any:
    """Run one stage with the shared contract (see the module docstring).

    Parameters
    ----------
    name : str
        A registered stage.
    config : StudyConfig
    progress : bool
        Progress bars.
    overwrite : bool
        Replace the stage's own results (all of them) instead of resuming or refusing.
    replace_other : bool
        Replace the stage's own results only when another configuration produced them
        (the demo's folder belongs to the demo); matching results are reused.

    Returns whatever the stage's run function returns.
    """
    stage = STAGES[name]
    if stage.check is not None:
        stage.check(config, {})  # what the config alone refuses, before prepare runs for it
    inputs = _upstream(name, config, progress, replace_other)
    folder = stage_folder(config, name)
    identity = expected_identity(name, config)
    sections = stage_sections(stage, config)
    _recover_replaced(folder)
    old = _own_results(folder)
    previous = old if old is not None and old.identity == identity else None
    if old is not None and previous is None:
        overwrite = overwrite or replace_other
        if not overwrite:
            raise mismatch_error(
                name, folder, old.config, sections,
                f"Pass --overwrite to replace them, or choose another --out (the config of "
                f"the results there is {Path(config.output_dir) / 'config.yaml'}).",
            )
    if stage.check is not None:
        stage.check(config, inputs)  # may refuse: nothing has been written or removed yet
    if old is not None and previous is None:
        logger.warning("replacing the %s results of another configuration in %s", name, folder)
    if overwrite:  # every own result is replaced, stale files included
        previous = None
    recorded = {k: {"identity": m.identity, "digest": m.digest} for k, m in inputs.items()}
    if (not overwrite and previous is not None and previous.complete
            and stage.load is not None and previous.inputs == recorded
            and not previous.check_products(folder)):
        result = stage.load(StageContext(config, folder, previous, inputs, progress,
                                         overwrite, previous))
        if result is not None:
            logger.info("stage %s is up to date in %s", name, folder)
            save_config(config)
            _warn_stale(folder, previous)
            return result
    with _transaction(config, folder, replace=overwrite and folder.is_dir()):
        folder.mkdir(parents=True, exist_ok=True)
        remove_temporary(folder)
        save_config(config)  # only now: every check passed
        manifest = Manifest(stage=name, identity=identity, config=sections, inputs=recorded)
        manifest.start(eegcrp=package_version())
        ctx = StageContext(config, folder, manifest, inputs, progress, overwrite, previous)
        ctx.save()
        result = stage.run(ctx)
        manifest.finish()
        ctx.save()
    _warn_stale(folder, manifest)
    return result


def _own_results(folder: Path) -> Manifest | None:
    """The stage's manifest in ``folder``, or None when there are no results.

    A manifest that is incomplete and lists no product is left by a run that failed or was
    killed before it produced anything: it is no result and is removed.
    """
    manifest = Manifest.read(folder)
    if manifest is not None and not manifest.complete and not manifest.products:
        logger.info("%s holds an unfinished run without results; starting afresh", folder)
        (folder / MANIFEST_NAME).unlink(missing_ok=True)
        return None
    return manifest


def _replaced(folder: Path) -> Path:
    """Where ``--overwrite`` keeps a stage's old results until the new ones are complete."""
    return folder.with_name(f"{TMP_PREFIX}{folder.name}-replaced")


def _recover_replaced(folder: Path) -> None:
    """Finish what a killed ``--overwrite`` left: its checks had passed, so the old results
    go, unless the new run never got as far as creating its folder."""
    aside = _replaced(folder)
    if not aside.is_dir():
        return
    if folder.is_dir():
        logger.warning("removing the results %s that a killed --overwrite run replaced", aside)
        shutil.rmtree(aside)
    else:
        aside.rename(folder)


@contextlib.contextmanager
def _transaction(config: StudyConfig, folder: Path, *, replace: bool) -> Iterator[None]:
    """Run a stage so that failing or being interrupted loses nothing.

    With ``replace`` the old results are moved aside and deleted only after success; on
    any exception (refusal, error, Ctrl-C) they are put back. Without it, a run that
    recorded no product puts back the manifest that was there before (or none). In both
    cases ``config.yaml`` returns to what it was when nothing of the new run remains.
    """
    cfg, own = Path(config.output_dir) / "config.yaml", folder / MANIFEST_NAME
    saved = {path: path.read_bytes() if path.is_file() else None for path in (cfg, own)}
    aside = _replaced(folder)
    if replace:
        folder.rename(aside)
    try:
        yield
    except BaseException:
        if replace:
            shutil.rmtree(folder, ignore_errors=True)
            aside.rename(folder)
            restore = [cfg]
        else:
            current = Manifest.read(folder)
            produced = current is not None and (current.complete or current.products)
            restore = [] if produced else [cfg, own]
        for path in restore:
            if saved[path] is not None:
                write_bytes_atomic(path, saved[path])
            else:
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when this run created it and left it empty
        raise
    if replace:
        shutil.rmtree(aside, ignore_errors=True)


def _warn_stale(folder: Path, manifest: Manifest) -> None:
    stale = stale_files(folder, manifest)
    if stale:
        logger.warning(
            "%d file(s) in %s are not listed in its manifest and are ignored (stale; "
            "--overwrite removes them): %s", len(stale), folder,
            ", ".join(p.relative_to(folder).as_posix() for p in stale[:5]),
        )

"""Stage ``prepare``: load and preprocess every subject into the cache, and say exactly which
cached files the study uses.

Products: ``prepare/summary.csv`` (windows per subject and class). The manifest's ``extra``
lists the cache files with their hashes (``cache.files``), the dataset's description
(classes, subjects, channels with positions and whether they are bipolar derivations) and,
for simulated data, the ground truth. Later stages read the windows only through
:func:`load_prepared`, which opens exactly those files and checks their hashes, so nothing
they compute can come from other data than the manifest names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mne
import numpy as np

from ..config import StudyConfig
from ..data.base import EEGDataset
from ..errors import StageError
from ..io import sha256_file
from .manifest import Manifest
from .registry import Stage, StageContext, register

logger = logging.getLogger(__name__)

__all__ = ["cache_files_of", "channel_table", "load_prepared"]

_BIPOLAR = mne.io.constants.FIFF.FIFFV_COIL_EEG_BIPOLAR


def channel_table(info: mne.Info) -> dict[str, Any]:
    """Channel names, 3-D positions (m, head frame; None where unknown) and derivation kind.

    ``bipolar`` is true when any channel is a bipolar derivation (MNE's coil type
    ``FIFFV_COIL_EEG_BIPOLAR``): such data have no scalp potential to draw as a topography.
    """
    names, positions, bipolar = [], [], []
    for ch in info["chs"]:
        names.append(ch["ch_name"])
        # FIF stores positions as float32: rounding to float32 here gives the same numbers
        # whether the first subject was just computed or read back from the cache
        loc = np.asarray(ch["loc"][:3], np.float32).astype(np.float64)
        positions.append(loc.tolist() if np.all(np.isfinite(loc)) and np.any(loc != 0) else None)
        bipolar.append(int(ch.get("coil_type", 0)) == _BIPOLAR)
    return {"names": names, "positions": positions, "bipolar": bool(any(bipolar)),
            "bipolar_channels": [n for n, b in zip(names, bipolar, strict=True) if b]}


def _cache_files(dataset: EEGDataset) -> dict[str, dict[str, Any]]:
    files = dataset.info.get("cache_files")
    if not files:
        raise StageError("preprocessing returned no cache file list; this is a bug in eegcrp")
    return {str(s): dict(v) for s, v in files.items()}


def _cache_reference(config: StudyConfig, files: dict[str, dict[str, Any]], key: str
                     ) -> dict[str, Any]:
    """Where the cache files are, so that a moved or copied run folder reads its own.

    A cache inside the run folder (the default ``<output_dir>/cache``) is recorded relative
    to the run folder, so a copy reads the copy's cache, never the original's; a cache
    elsewhere (``cache_dir``, ``$EEGCRP_CACHE``: a shared cache root) is recorded by its
    absolute path. File names are relative to the cache folder. Every file is verified by
    its SHA-256 when read (:func:`load_prepared`).
    """
    from ..preprocessing import cache_folder

    folder = cache_folder(config).resolve()
    run = Path(config.output_dir).resolve()
    where = folder.relative_to(run).as_posix() if folder.is_relative_to(run) else str(folder)
    names = {s: {**f, **{role: Path(f[role]).name for role in ("windows", "continuous")
                         if role in f}} for s, f in files.items()}
    return {"folder": where, "relative_to_run": folder.is_relative_to(run), "key": key,
            "files": names}


def cache_files_of(manifest: Manifest) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The cache folder a ``prepare`` manifest refers to, and its files as absolute paths.

    Manifests written before references were relative hold absolute paths: kept as they are.
    """
    cache = manifest.extra["cache"]
    folder = Path(cache["folder"])
    if cache.get("relative_to_run"):
        if manifest.location is None:
            raise StageError("a prepare manifest with a relative cache folder must be read "
                             "from its run folder (Manifest.read); this is a bug in eegcrp")
        folder = manifest.location.parent / folder
    files = {s: {**f, **{role: str(folder / f[role]) for role in ("windows", "continuous")
                         if role in f}} for s, f in cache["files"].items()}
    return folder, files


def _run(ctx: StageContext) -> EEGDataset:
    from ..preprocessing import cache_key, prepare

    dataset = prepare(ctx.config, progress=ctx.progress)
    summary = dataset.summary()
    ctx.write_csv(summary, "summary.csv", index=True)
    files = _cache_files(dataset)
    first = dataset[dataset.subjects[0]]
    info = {k: v for k, v in dataset.info.items()
            if k in ("ground_truth", "notes", "source", "implausible_channels")}
    ctx.manifest.extra = {
        "dataset": {
            "name": dataset.name, "task": dataset.task, "mains_freq": dataset.mains_freq,
            "classes": dataset.classes, "event_id": dataset.event_id,
            "subjects": dataset.subjects, "sfreq": dataset.sfreq, "n_times": dataset.n_times,
            "windows": {s: int(len(ep)) for s, ep in dataset},
        },
        "channels": channel_table(first.info),
        "info": info,
        "cache": _cache_reference(ctx.config, files, cache_key(ctx.config)),
        # the cache lives outside the run folder: its hashes enter the digest
        "digest_extra": {s: f.get("sha256", {}) for s, f in files.items()},
    }
    return dataset


def load_prepared(manifest: Manifest, subjects: list[str] | None = None, *,
                  verify: bool = True) -> EEGDataset:
    """The windows a verified ``prepare`` manifest lists, read from exactly its cache files.

    Parameters
    ----------
    manifest : Manifest
        From :func:`eegcrp.stages.registry.require` (``"prepare"``).
    subjects : list of str | None
        Subjects to read (default: all, in dataset order).
    verify : bool
        Check every file against its recorded SHA-256.

    Raises
    ------
    StageError
        When a listed cache file is missing or has changed since ``prepare`` ran.
    """
    extra = manifest.extra
    desc = extra["dataset"]
    folder, files = cache_files_of(manifest)
    wanted = list(desc["subjects"]) if subjects is None else [str(s) for s in subjects]
    epochs = {}
    for subject in wanted:
        if subject not in files:
            raise StageError(f"subject {subject} is not part of the prepared data "
                             f"({list(files)}); re-run `eegcrp prepare` with it selected")
        path = files[subject]["windows"]
        expected = files[subject].get("sha256", {}).get("windows")
        try:
            ok = not verify or expected is None or sha256_file(path) == expected
        except OSError:
            ok = False
        if not ok:
            raise StageError(
                f"the cached windows of subject {subject} ({path}) are missing or changed "
                "since `eegcrp prepare` ran (a run folder copied without its cache/?); re-run "
                "`eegcrp prepare CONFIG` to compute them again"
            )
        epochs[subject] = mne.read_epochs(path, preload=True, verbose="error")
    info = dict(extra.get("info", {}))
    info.update(cache=str(folder), cache_key=extra["cache"]["key"], cache_files=files)
    return EEGDataset(desc["name"], epochs, desc["task"], desc["mains_freq"], info=info)


def _prepare_identity(config: StudyConfig) -> dict[str, Any]:
    from ..preprocessing import cache_key

    return {"cache_key": cache_key(config)}


def _report(report: Any, ctx: Any) -> None:
    from ..report.data_section import add_data_section
    from ..report.ground_truth_section import add_ground_truth_section

    add_data_section(report, ctx)
    add_ground_truth_section(report, ctx)


def _describe(dataset: EEGDataset, config: StudyConfig) -> str:
    summary = dataset.summary()
    notes = "".join(f"\n  {n}" for n in dataset.info.get("notes", []))
    return (f"{summary.to_string()}\n\nwindows: {int(summary['n_epochs'].sum())}, subjects: "
            f"{len(summary)}; summary in {config.output_dir}/prepare/summary.csv"
            + (f"\nnotes:{notes}" if notes else ""))


STAGE = register(Stage(
    name="prepare",
    help="load + preprocess (cached); print a per-subject table",
    folder="prepare",
    sections=("dataset", "preprocessing"),
    run=_run,
    report=_report,
    auto=True,
    extra_identity=_prepare_identity,
    describe=_describe,
))

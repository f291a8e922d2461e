""":func:`prepare`: load, preprocess and cache a study's dataset."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mne
import numpy as np

from ..config import StudyConfig
from ..data.base import BaseLoader, DataError, EEGDataset
from ..data.registry import get_loader
from ..io import write_json_atomic
from .amplitude import check_amplitudes
from .cache import (
    CACHE_LAYOUT,
    CacheEntry,
    cache_folder,
    cache_key,
    code_hash,
    package_version,
    remove_stale_temporary,
)
from .core import Preprocessor, TrialsTooShortError

logger = logging.getLogger(__name__)

__all__ = ["prepare"]


def prepare(
    config: StudyConfig, *, progress: bool = True, use_cache: bool = True
) -> EEGDataset:
    """Load and preprocess a study's dataset, reading and filling the cache.

    Parameters
    ----------
    config : StudyConfig
        The study configuration (``dataset`` and ``preprocessing`` sections are used).
    progress : bool
        Show a progress bar over subjects.
    use_cache : bool
        Read cached subjects if present and intact (they are always written).

    Returns
    -------
    EEGDataset
        Windows of every subject, validated for leave-one-subject-out use. ``info`` holds
        ``cache`` (folder), ``cache_key``, ``cache_files`` ({subject: {"windows": path,
        "continuous": path, "sha256": {"windows": ..., "continuous": ...}}}), ``source``,
        ``cache_hits``, ``notes`` (treatments applied, e.g. to epoched sources),
        ``implausible_channels`` ({subject: {channel: robust peak-to-peak in µV}} of the
        subjects kept with ``preprocessing.amplitude_action: warn``; empty when every
        channel passed, see :mod:`eegcrp.preprocessing.amplitude`) and the loader's
        provenance (``ground_truth`` for simulated data).

    Raises
    ------
    DataError
        Bad input, trials shorter than ``preprocessing.window`` in (nearly) every subject,
        or channels of implausible amplitude with ``amplitude_action: refuse``.
    """
    from tqdm.auto import tqdm

    loader = get_loader(config.dataset)
    subjects = loader.subject_ids()
    pre = Preprocessor(config.preprocessing)
    folder = cache_folder(config)
    key = cache_key(config)
    remove_stale_temporary(folder)
    epochs: dict[str, mne.BaseEpochs] = {}
    cache_files: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    implausible: dict[str, dict[str, float]] = {}
    too_short: dict[str, float] = {}
    hits = 0
    bar = tqdm(subjects, desc=f"prepare {config.dataset.kind}", unit="subject",
               disable=not progress)
    for subject in bar:
        bar.set_postfix_str(subject)
        entry = CacheEntry.of(folder, loader, subject)
        sidecar = entry.verified() if use_cache else None
        windows = entry.read_windows() if sidecar is not None else None
        if windows is not None and sidecar is not None:
            hits += 1
            # the decision is re-made from the recorded amplitudes, with today's limits
            amplitudes = sidecar.get("amplitudes_uv") or {}
            least = sidecar.get("min_amplitudes_uv") or amplitudes
            flagged = check_amplitudes(
                list(amplitudes), [v * 1e-6 for v in amplitudes.values()],
                config.preprocessing, f"{_source(loader, [subject])} (subject {subject})",
                subject, [least.get(k, v) * 1e-6 for k, v in amplitudes.items()],
            )
        else:
            try:
                result = pre.process(loader.load_recording(subject))
            except TrialsTooShortError as exc:
                logger.warning("%s; subject %s is dropped", exc, subject)
                too_short[subject] = exc.duration
                continue
            sidecar = entry.write(result.windows, result.continuous, {
                "cache_key": key, "notes": result.notes, "n_windows": len(result.windows),
                "n_trials": int(result.windows.metadata["trial"].nunique()),
                "amplitudes_uv": result.amplitudes,
                "min_amplitudes_uv": result.smallest_amplitudes,
            })
            windows = result.windows
            flagged = result.implausible
        if flagged:
            implausible[subject] = flagged
        epochs[subject] = windows
        cache_files[subject] = entry.describe(sidecar)
        notes.extend(n for n in sidecar.get("notes", []) if n not in notes)
    if too_short and len(epochs) < 2:
        raise _too_short_error(config, loader, too_short)
    notes = [f"{config.dataset.kind}: {n}" for n in notes]
    for note in notes:
        logger.info("%s", note)
    logger.info("prepare: %d of %d subjects read from cache %s", hits, len(subjects), folder)
    first = next(iter(epochs.values()), None)
    mains = first.info["line_freq"] if first is not None else loader.site_mains_freq()
    dataset = EEGDataset(
        loader.name, epochs, loader.task, mains,
        info={"cache": str(folder), "cache_key": key, "cache_files": cache_files,
              "source": _source(loader, subjects), "cache_hits": hits, "notes": notes,
              "implausible_channels": implausible},
    )
    provenance = dict(loader.dataset_info(list(epochs)))
    dataset.info["notes"] += [f"{config.dataset.kind}: {n}" for n in provenance.pop("notes", [])]
    dataset.info.update(provenance)
    dataset.validate()
    write_json_atomic(folder / "manifest.json", {
        "layout": CACHE_LAYOUT,
        "key": key,
        "eegcrp": package_version(),
        "code": code_hash(),
        "dataset": config.dataset.model_dump(mode="json"),
        "preprocessing": config.preprocessing.model_dump(mode="json"),
        "subjects": {s: {role: Path(f[role]).name for role in ("windows", "continuous")}
                     for s, f in cache_files.items()},
        "classes": dataset.classes,
        "ch_names": dataset.ch_names,
        "sfreq": dataset.sfreq,
        "n_times": dataset.n_times,
        "notes": notes,
        "versions": {"mne": mne.__version__, "numpy": np.__version__},
    })
    return dataset


def _too_short_error(
    config: StudyConfig, loader: BaseLoader, too_short: dict[str, float]
) -> DataError:
    """Trials shorter than a window: the fix is the window (or the trial), not subjects."""
    shortest = min(too_short.values())
    lengths = sorted(set(too_short.values()))
    listed = ", ".join(f"{v:g}" for v in lengths)
    hint = f", or {loader.trial_length_hint}" if loader.trial_length_hint else ""
    onset = config.preprocessing.min_window_onset
    if onset > 0:
        return DataError(
            f"{config.dataset.kind}: the trials of subject(s) {sorted(too_short)} are {listed} "
            f"s long, too short for a {config.preprocessing.window:g}-s window starting "
            f"preprocessing.min_window_onset ({onset:g} s) after the trial start: lower "
            f"preprocessing.window to at most {max(shortest - onset, 0):g} s or lower "
            f"min_window_onset{hint}")
    return DataError(
        f"{config.dataset.kind}: the trials of subject(s) {sorted(too_short)} are {listed} s "
        f"long, shorter than preprocessing.window ({config.preprocessing.window:g} s), so no "
        f"window fits: lower preprocessing.window to at most {shortest:g} s "
        f"(--set preprocessing.window={shortest:g}){hint}"
    )


def _source(loader: BaseLoader, subjects: list[str]) -> str:
    """The data folder, or the loader's name when it reads no files (simulated data)."""
    return str(loader.path) if subjects and loader.files(subjects[0]) else loader.name

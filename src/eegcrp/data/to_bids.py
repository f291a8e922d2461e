"""``eegcrp to-bids CONFIG OUT``: any continuous dataset eegcrp reads, written as BIDS.

Each subject's :class:`~eegcrp.data.recording.Recording` (what the loader read: EEG channels
in volts with their montage and mains frequency, before any preprocessing) becomes one BIDS
run per continuous segment, written by :func:`mne_bids.write_raw_bids` as BrainVision
(32-bit float, through pybv) with ``channels.tsv``, ``electrodes.tsv``/``coordsystem.json``
from the montage, ``PowerLineFrequency`` and an ``events.tsv`` whose ``trial_type`` is the
class of each trial, at its event (the trial's start minus the source's ``tmin``). The
dataset section that reads it back with the same trials (``kind: bids``) is written to
``OUT/code/eegcrp_dataset.yaml``, so a study of the BIDS copy reproduces the native one.

Epoched sources (BCI IV 2b's ``.mat`` files hold trials only) are refused: BIDS EEG holds
continuous recordings, and eegcrp will not invent the signal between trials.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import DataError
from ..io import TMP_PREFIX
from .bids import _mne_bids, bids_entity
from .registry import get_loader

__all__ = ["write_bids"]

logger = logging.getLogger(__name__)


def _events(rec: Any, segment: int, tmin: float, first_samp: int) -> np.ndarray:
    trials = rec.trials[rec.trials["segment"] == segment]
    samples = np.round((trials["onset"].to_numpy() - tmin) * rec.sfreq).astype(int)
    codes = [rec.event_id[label] for label in trials["label"]]
    return np.column_stack([samples + first_samp, np.zeros(len(codes), int), codes])


def _run_label(rec: Any, segment: int) -> str | None:
    """The source's run of a segment where its trials name one (EEGMMIDB: 4, 8, 12), else
    the segment's position from 1; none for a single segment."""
    if len(rec.segments) == 1:
        return None
    runs = rec.trials.loc[rec.trials["segment"] == segment].get("run")
    if runs is not None and runs.nunique() == 1 and bids_entity(str(runs.iloc[0])):
        return bids_entity(str(runs.iloc[0]))
    return str(segment + 1)


def write_bids(config: Any, root: str | Path, *, task: str | None = None,
               overwrite: bool = False, progress: bool = False) -> dict[str, Any]:
    """Write the dataset of ``config`` below the BIDS root ``root``.

    A new root is written into a temporary folder beside it and renamed when every subject
    is written, so a failed or interrupted run leaves nothing behind.

    Parameters
    ----------
    config : StudyConfig
    root : str | Path
        The BIDS root (created; an existing non-empty one needs ``overwrite``).
    task : str | None
        The BIDS task label (default: the dataset's task without ``_``).
    overwrite : bool
        Replace the files of the same subjects and runs in an existing root (in place).

    Returns
    -------
    dict
        ``subjects``, ``runs``, ``trials``, ``task`` and ``dataset`` (the ``kind: bids``
        section that reads the copy back, also in ``code/eegcrp_dataset.yaml``).
    """
    root = Path(root).resolve()
    if root.exists() and not root.is_dir():
        raise DataError(f"to-bids: {root} is a file; give a folder for the BIDS root")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise DataError(f"to-bids: {root} is not empty; choose a new folder or pass "
                            "--overwrite to replace the files of these subjects")
        return _write(config, root, root, task, progress)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{root.name[:20]}-", dir=root.parent))
    try:
        done = _write(config, tmp, root, task, progress)
        if root.exists():
            root.rmdir()  # empty (checked above)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done


def _write(config: Any, folder: Path, root: Path, task: str | None, progress: bool
           ) -> dict[str, Any]:
    """Write every subject into ``folder`` (which becomes ``root``)."""
    from tqdm.auto import tqdm

    mb = _mne_bids()
    loader = get_loader(config.dataset)
    label = bids_entity(task or loader.task)
    subjects = loader.subject_ids()
    tmin = float(getattr(config.dataset, "tmin", 0.0) or 0.0)
    runs = trials = 0
    duration = mains = None
    event_id: dict[str, int] = {}
    for subject in tqdm(subjects, desc="to-bids", unit="subject", disable=not progress):
        rec = loader.load_recording(subject)
        if rec.epoched:
            raise DataError(f"to-bids: {config.dataset.kind} holds trials only (epoched), "
                            "and BIDS EEG holds continuous recordings; convert the source's "
                            "continuous files instead (BCI IV 2b: its GDF originals)")
        event_id = rec.event_id
        duration, mains = rec.duration, rec.line_freq
        for k, raw in enumerate(rec.segments):
            # the trials are the events; the source's own markers (EDF annotations ...)
            # are not classes and stay out of events.tsv
            raw.set_annotations(None)
            bp = mb.BIDSPath(subject=bids_entity(subject), task=label, datatype="eeg",
                             run=_run_label(rec, k), root=folder)
            try:
                mb.write_raw_bids(raw, bp, events=_events(rec, k, tmin, raw.first_samp),
                                  event_id=event_id, format="BrainVision",
                                  allow_preload=True, overwrite=True, verbose="error")
            except (ValueError, RuntimeError, OSError) as exc:
                raise DataError(f"to-bids: mne-bids could not write subject {subject}, "
                                f"segment {k} ({exc})") from exc
            runs += 1
        trials += len(rec.trials)
    dataset = {"kind": "bids", "path": str(root), "task": label,
               "family": loader.task if label != loader.task else None,
               "classes": {name: name for name in event_id}, "tmin": tmin,
               "tmax": tmin + float(duration)}
    dataset = {k: v for k, v in dataset.items() if v is not None}
    code = folder / "code"
    code.mkdir(exist_ok=True)
    (code / "eegcrp_dataset.yaml").write_text(
        "# the dataset section that reads this BIDS copy with eegcrp (kind: bids)\n"
        + yaml.safe_dump({"dataset": dataset}, sort_keys=False))
    logger.info("to-bids: %d subjects, %d runs, %d trials, mains %s Hz", len(subjects), runs,
                trials, mains)
    return {"subjects": [bids_entity(s) for s in subjects], "runs": runs, "trials": trials,
            "task": label, "dataset": dataset}

"""Dataset type shared by every loader, the loader base class and the input checks.

A loader (:class:`BaseLoader`) returns per subject a :class:`~eegcrp.data.recording.Recording`:
the continuous source data plus where the trials lie. :mod:`eegcrp.preprocessing` filters
it, resamples it and cuts fixed-length windows; :meth:`BaseLoader.load` instead cuts the
raw trials. Either way the result is an :class:`EEGDataset`, an ordered set of subjects,
each an :class:`mne.Epochs` with a montage, the dataset's ``event_id`` (class name -> code)
and a metadata table whose ``subject`` column names the subject of every epoch.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import mne
import numpy as np
import pandas as pd

from ..config.data import TASK_FAMILIES, check_task_label
from ..errors import DataError
from .montage import is_bipolar, make_montage, mark_bipolar, set_montage_strict
from .recording import Recording

logger = logging.getLogger(__name__)

__all__ = [
    "TASKS",
    "BaseLoader",
    "DataError",
    "EEGDataset",
    "Recording",
    "check_finite",
    "is_bipolar",
    "make_epochs",
    "make_montage",
    "make_segment",
    "mark_bipolar",
    "set_montage_strict",
]

#: The task families eegcrp knows (they choose defaults); a dataset may carry any other
#: task label (``p300``, a BIDS task entity ...), which gets the defaults of none of them.
TASKS = TASK_FAMILIES


@dataclass
class EEGDataset:
    """Multi-subject EEG: one :class:`mne.Epochs` per subject, sharing classes and channels.

    Parameters
    ----------
    name : str
        Short dataset name (``bciciv2b``, ``eegmat`` ...).
    epochs : dict of str to mne.BaseEpochs
        Subject id -> that subject's epochs (trials or windows).
    task : str
        One of :data:`TASKS` or another label (letters, digits, ``_``, ``-``).
    mains_freq : float | None
        Mains frequency of the recording site in Hz (None if unknown/not applicable).
    info : dict
        Free-form provenance (source folder, sessions, citation ...).
    """

    name: str
    epochs: dict[str, mne.BaseEpochs]
    task: str
    mains_freq: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            check_task_label(self.task)
        except ValueError as exc:
            raise DataError(str(exc)) from None

    # ------------------------------------------------------------------ accessors
    @property
    def subjects(self) -> list[str]:
        """Subject ids in dataset order."""
        return list(self.epochs)

    def __len__(self) -> int:
        return len(self.epochs)

    def __iter__(self) -> Iterator[tuple[str, mne.BaseEpochs]]:
        return iter(self.epochs.items())

    def __getitem__(self, subject: str) -> mne.BaseEpochs:
        try:
            return self.epochs[subject]
        except KeyError:
            raise KeyError(
                f"no subject {subject!r} in dataset {self.name!r}; subjects: {self.subjects}"
            ) from None

    def _first(self) -> mne.BaseEpochs:
        if not self.epochs:
            raise DataError(f"dataset {self.name!r} holds no subjects")
        return next(iter(self.epochs.values()))

    @property
    def event_id(self) -> dict[str, int]:
        """Class name -> event code (shared by all subjects)."""
        return dict(self._first().event_id)

    @property
    def classes(self) -> list[str]:
        """Class names ordered by event code."""
        return [k for k, _ in sorted(self.event_id.items(), key=lambda kv: kv[1])]

    @property
    def ch_names(self) -> list[str]:
        """Channel names (shared by all subjects)."""
        return list(self._first().ch_names)

    @property
    def sfreq(self) -> float:
        """Sampling frequency in Hz."""
        return float(self._first().info["sfreq"])

    @property
    def n_times(self) -> int:
        """Samples per epoch."""
        return len(self._first().times)

    # ------------------------------------------------------------------ views
    def summary(self) -> pd.DataFrame:
        """One row per subject: epochs per class, channels, sfreq and epoch length.

        Datasets from :func:`eegcrp.preprocessing.prepare` add ``implausible_channels``: the
        channels the amplitude check flagged, with their robust peak-to-peak amplitude
        (``"Fp1 (4200 µV)"``; empty when every channel passed).
        """
        flagged = self.info.get("implausible_channels")
        rows = []
        for subject, ep in self:
            codes = ep.events[:, 2]
            row: dict[str, Any] = {"subject": subject}
            for name in self.classes:
                row[name] = int(np.sum(codes == ep.event_id[name]))
            row.update(
                n_epochs=len(ep),
                n_channels=len(ep.ch_names),
                sfreq=float(ep.info["sfreq"]),
                epoch_s=round(len(ep.times) / ep.info["sfreq"], 4),
            )
            if flagged is not None:
                row["implausible_channels"] = ", ".join(
                    f"{name} ({value:.4g} µV)" for name, value in flagged.get(subject, {}).items()
                )
            rows.append(row)
        return pd.DataFrame(rows).set_index("subject")

    def get_data(self, subjects: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
        """Stack epochs of the given subjects into arrays.

        Returns
        -------
        X : ndarray, shape (n_epochs, n_channels, n_times)
            Data in volts (float32).
        y : ndarray of int, shape (n_epochs,)
            Class index into :attr:`classes`.
        groups : ndarray of str, shape (n_epochs,)
            Subject id of each epoch.
        """
        subjects = self.subjects if subjects is None else list(subjects)
        code_to_index = {self.event_id[c]: i for i, c in enumerate(self.classes)}
        xs, ys, gs = [], [], []
        for s in subjects:
            ep = self[s]
            xs.append(ep.get_data(copy=False).astype(np.float32, copy=False))
            ys.append(np.array([code_to_index[c] for c in ep.events[:, 2]], dtype=np.int64))
            gs.append(np.full(len(ep), s, dtype=object))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)

    # ------------------------------------------------------------------ checks
    def validate(self, *, min_subjects: int = 2, min_classes: int = 2) -> EEGDataset:
        """Check the dataset is usable for leave-one-subject-out classification.

        Raises
        ------
        DataError
            With the subject and the fix, if subjects disagree on channels, sfreq,
            classes or epoch length, if there are too few subjects or classes, or if
            data contain NaN/Inf.
        """
        if len(self) < min_subjects:
            raise DataError(
                f"dataset {self.name!r} has {len(self)} subject(s) ({self.subjects}); "
                f"leave-one-subject-out needs at least {min_subjects}: add subjects or "
                "set dataset.subjects to null to load all of them"
            )
        ref = self._first()
        ref_subject = self.subjects[0]
        for subject, ep in self:
            if list(ep.ch_names) != list(ref.ch_names):
                missing = sorted(set(ref.ch_names) - set(ep.ch_names))
                extra = sorted(set(ep.ch_names) - set(ref.ch_names))
                raise DataError(
                    f"subject {subject} has other channels than subject {ref_subject} "
                    f"(missing {missing}, extra {extra}); pick a common channel set"
                )
            if ep.info["sfreq"] != ref.info["sfreq"]:
                raise DataError(
                    f"subject {subject} is at {ep.info['sfreq']} Hz but {ref_subject} at "
                    f"{ref.info['sfreq']} Hz; resample all subjects to one rate"
                )
            if dict(ep.event_id) != dict(ref.event_id):
                raise DataError(
                    f"subject {subject} has classes {ep.event_id}, subject {ref_subject} has "
                    f"{ref.event_id}; every subject must use the same event_id"
                )
            if len(ep.times) != len(ref.times):
                raise DataError(
                    f"subject {subject} has epochs of {len(ep.times)} samples, {ref_subject} "
                    f"of {len(ref.times)}; window the data to one length"
                )
            check_finite(ep.get_data(copy=False), f"subject {subject}")
        present = {int(c) for _, ep in self for c in np.unique(ep.events[:, 2])}
        if len(present) < min_classes:
            names = [k for k, v in self.event_id.items() if v in present]
            raise DataError(
                f"dataset {self.name!r} contains only class(es) {names}; classification needs "
                f"at least {min_classes}: check the event/class mapping of the loader"
            )
        return self


def check_finite(data: np.ndarray, where: str) -> None:
    """Raise :class:`DataError` naming ``where`` if ``data`` holds NaN or Inf."""
    if not np.all(np.isfinite(data)):
        n_bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise DataError(
            f"{where} contains {n_bad} NaN/Inf value(s); repair or exclude the affected "
            "channels/trials (e.g. interpolate bad channels) before loading"
        )


def make_epochs(
    data: np.ndarray,
    *,
    ch_names: Sequence[str],
    sfreq: float,
    labels: Sequence[str],
    event_id: Mapping[str, int],
    subject: str,
    montage: str | mne.channels.DigMontage | None = "standard_1005",
    metadata: pd.DataFrame | None = None,
    source: str = "",
    line_freq: float | None = None,
    ch_types: str | Sequence[str] = "eeg",
) -> mne.EpochsArray:
    """Build validated trial epochs from an array.

    Parameters
    ----------
    data : ndarray, shape (n_trials, n_channels, n_times)
        Data in volts.
    labels : sequence of str
        Class name of each trial (keys of ``event_id``).
    subject : str
        Subject id, stored in the metadata column ``subject``.
    metadata : DataFrame | None
        Extra per-trial columns (session, run ...).
    source : str
        File or folder the data came from, used in error messages.

    Returns
    -------
    mne.EpochsArray
        Epochs with montage and metadata columns ``subject``, ``trial`` plus ``metadata``.
    """
    where = f"{source} (subject {subject})" if source else f"subject {subject}"
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 3:
        raise DataError(f"{where}: expected trials x channels x times, got shape {data.shape}")
    if data.shape[0] == 0:
        raise DataError(f"{where}: no trials found; check the event/class mapping")
    if data.shape[1] != len(ch_names):
        raise DataError(
            f"{where}: {data.shape[1]} channels in the data but {len(ch_names)} names"
        )
    if len(labels) != data.shape[0]:
        raise DataError(f"{where}: {len(labels)} labels for {data.shape[0]} trials")
    unknown = sorted(set(labels) - set(event_id))
    if unknown:
        raise DataError(f"{where}: labels {unknown} are not in event_id {dict(event_id)}")
    check_finite(data, where)
    info = mne.create_info(list(ch_names), float(sfreq), ch_types=ch_types)
    if line_freq is not None:
        info["line_freq"] = float(line_freq)
    info["subject_info"] = {"his_id": str(subject)}
    events = np.column_stack(
        [
            np.arange(len(labels)) * data.shape[2],
            np.zeros(len(labels), dtype=int),
            [event_id[lab] for lab in labels],
        ]
    ).astype(int)
    meta = pd.DataFrame({"subject": [str(subject)] * len(labels), "trial": np.arange(len(labels))})
    if metadata is not None:
        extra = metadata.reset_index(drop=True)
        meta = pd.concat([meta, extra.drop(columns=[c for c in extra if c in meta])], axis=1)
    epochs = mne.EpochsArray(
        data, info, events=events, event_id=dict(event_id), metadata=meta, on_missing="ignore",
        verbose="error",
    )
    if montage is not None:
        set_montage_strict(epochs, montage, where)
    return epochs


def make_segment(
    raw: mne.io.BaseRaw,
    *,
    montage: str | mne.channels.DigMontage | None,
    line_freq: float | None,
    where: str,
) -> mne.io.BaseRaw:
    """Finish one continuous segment for a :class:`Recording`: montage and ``line_freq``.

    ``raw`` (preloaded, EEG channels only, volts) is modified in place and returned.
    """
    if montage is not None:
        set_montage_strict(raw, montage, where)
    with raw.info._unlock():
        raw.info["line_freq"] = None if line_freq is None else float(line_freq)
    return raw


class BaseLoader(ABC):
    """A source of multi-subject EEG recordings.

    Subclasses set :attr:`name`, :attr:`task`, :attr:`default_folder` and
    :attr:`mains_freq`, and implement :meth:`subject_ids`, :meth:`files` and
    :meth:`load_recording` (continuous segments plus a trials table, see
    :class:`~eegcrp.data.recording.Recording`). :meth:`load_subject` cuts one subject's raw
    trials, :meth:`load` those of every subject.
    """

    name: ClassVar[str]
    task: ClassVar[str]
    default_folder: ClassVar[str] = ""
    #: Mains frequency of the recording site (Hz), or None when it depends on the data.
    mains_freq: ClassVar[float | None] = None
    #: How a user can lengthen this source's trials (named when they are shorter than a
    #: window); None when the source fixes the trial length.
    trial_length_hint: ClassVar[str | None] = None

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def path(self) -> Path:
        """Folder the recordings are read from."""
        return self.config.resolved_path(self.default_folder)

    def site_mains_freq(self) -> float | None:
        """Mains frequency for the notch: the config's override or the site's."""
        return self.config.mains_freq if self.config.mains_freq is not None else self.mains_freq

    def _check_folder(self) -> Path:
        path = self.path
        if not path.is_dir():
            raise DataError(
                f"{self.name}: data folder {path} does not exist; set dataset.path in the "
                "config or EEGCRP_DATA to the folder holding the recordings"
            )
        return path

    def _scan(self, pattern: re.Pattern[str]) -> dict[int, dict[str, Path]]:
        """Index the folder's files whose name matches ``pattern``.

        Group 1 of the pattern is the subject number, group 2 the file's part (session,
        condition ...): returns {subject number: {part: path}}.
        """
        index: dict[int, dict[str, Path]] = {}
        for path in sorted(self._check_folder().iterdir()):
            match = pattern.match(path.name)
            if match:
                index.setdefault(int(match[1]), {})[match[2]] = path
        return index

    @abstractmethod
    def subject_ids(self) -> list[str]:
        """Subject ids available (after the config's subject selection)."""

    @abstractmethod
    def files(self, subject: str) -> list[Path]:
        """Files read for one subject (used for the cache key)."""

    @abstractmethod
    def load_recording(self, subject: str) -> Recording:
        """One subject's continuous segments and trials, validated."""

    def load_subject(self, subject: str) -> mne.BaseEpochs:
        """Raw (unfiltered) trial epochs of one subject, with montage, event_id, metadata."""
        return self.load_recording(subject).to_epochs()

    def dataset_info(self, subjects: Sequence[str] | None = None) -> dict[str, Any]:
        """Extra provenance for ``EEGDataset.info`` (e.g. the simulator's ground truth)."""
        return {}

    def _select(self, available: Mapping[int, str]) -> list[str]:
        """Apply ``config.subjects`` (numbers) to {number: id}; error on unknown numbers."""
        if not available:
            raise DataError(
                f"{self.name}: no recognised files in {self.path}; check dataset.path "
                f"(expected the layout described in eegcrp.data.{self.name})"
            )
        wanted = self.config.subjects
        if wanted is None:
            return [available[k] for k in sorted(available)]
        missing = sorted(set(wanted) - set(available))
        if missing:
            raise DataError(
                f"{self.name}: subjects {missing} not found in {self.path}; available: "
                f"{sorted(available)}"
            )
        return [available[k] for k in wanted]

    def load(self, subjects: Sequence[str] | None = None, progress: bool = False) -> EEGDataset:
        """Raw trial epochs of all (or the given) subjects as an :class:`EEGDataset`."""
        from tqdm.auto import tqdm

        ids = self.subject_ids() if subjects is None else list(subjects)
        epochs = {}
        for sid in tqdm(ids, desc=f"load {self.name}", disable=not progress, unit="subject"):
            epochs[sid] = self.load_subject(sid)
        info = {"path": str(self.path), **self.dataset_info(ids)}
        return EEGDataset(self.name, epochs, self.task, self.site_mains_freq(), info=info)

"""PhysioNet eegmat: EEG during mental arithmetic vs rest (stand-in for internal attention).

Files ``SubjectXX_1.edf`` (rest, ~182 s) and ``SubjectXX_2.edf`` (serial-subtraction mental
arithmetic, 62 s); the class comes from the file name, there are no events inside. Each file
has 19 scalp channels of the 10-20 system named ``EEG Fp1`` ..., plus ``EEG A2-A1`` (ear
reference difference) and ``ECG ECG``, at 500 Hz, recorded in Ukraine (50 Hz mains).

Loading strips the ``EEG`` prefix, maps the old names T3/T4/T5/T6 to T7/T8/P7/P8, types the
ECG channel ``ecg`` and ``A2-A1`` ``misc`` and excludes both. Each file is one continuous
segment; its trials are consecutive pieces of ``trial_duration`` seconds from its start
(windows are cut later, inside trials). Metadata: ``file`` (file name) and ``piece`` (index
of the trial within its file).

Reference: Zyma et al., "Electroencephalograms during Mental Arithmetic Task Performance",
Data 4(1):14, 2019.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from .base import BaseLoader, DataError, Recording, make_segment
from .edf import check_edf, fix_hint

__all__ = ["EEGMATLoader"]

logger = logging.getLogger(__name__)

_FILE = re.compile(r"^Subject(\d{2})_([12])\.edf$")
EVENT_ID = {"rest": 1, "arithmetic": 2}
_CLASS_OF_FILE = {"1": "rest", "2": "arithmetic"}
_OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}


class EEGMATLoader(BaseLoader):
    """Loader for PhysioNet eegmat (see module docstring)."""

    name = "eegmat"
    task = "internal_attention"
    default_folder = "eegmat_arithmetic_21ch"
    mains_freq = 50.0  # Kyiv, Ukraine
    trial_length_hint = "raise dataset.trial_duration"

    def _index(self) -> dict[int, dict[str, Path]]:
        return self._scan(_FILE)

    def subject_ids(self) -> list[str]:
        index = self._index()
        complete = {num: f"S{num:02d}" for num, f in index.items() if {"1", "2"} <= set(f)}
        for num, f in index.items():
            if num not in complete:
                logger.warning("eegmat: Subject%02d has only file(s) %s; skipped", num, sorted(f))
        if index and not complete:  # files there, but never both classes of one subject
            found = sorted({_CLASS_OF_FILE[k] for f in index.values() for k in f})
            raise DataError(
                f"eegmat: {self.path} holds files of {len(index)} subject(s) but none has both "
                f"classes (found only {found}); each subject needs SubjectNN_1.edf (rest) and "
                "SubjectNN_2.edf (arithmetic) in the same folder"
            )
        return self._select(complete)

    def files(self, subject: str) -> list[Path]:
        found = self._index().get(int(subject[1:]), {})
        if {"1", "2"} - set(found):
            raise DataError(
                f"eegmat: subject {subject} needs both Subject{subject[1:]}_1.edf (rest) and "
                f"_2.edf (arithmetic) in {self.path}"
            )
        return [found["1"], found["2"]]

    def load_recording(self, subject: str) -> Recording:
        segments: list[mne.io.BaseRaw] = []
        rows: list[dict[str, object]] = []
        duration = self.config.trial_duration
        for path in self.files(subject):
            label = _CLASS_OF_FILE[_FILE.match(path.name)[2]]
            raw = _read_scalp(path)
            if segments and (raw.ch_names != segments[0].ch_names
                             or raw.info["sfreq"] != segments[0].info["sfreq"]):
                first = segments[0]
                raise DataError(
                    f"{path}: channels {raw.ch_names} at {raw.info['sfreq']} Hz differ from the "
                    f"subject's other file ({first.ch_names} at {first.info['sfreq']} Hz)"
                )
            n = int(round(duration * raw.info["sfreq"]))
            n_trials = raw.n_times // n
            if n_trials == 0:
                raise DataError(
                    f"{path}: recording ({raw.n_times / raw.info['sfreq']:.1f} s) is shorter "
                    f"than dataset.trial_duration ({duration} s); lower it"
                )
            rows.extend(
                {"segment": len(segments), "onset": k * n / raw.info["sfreq"], "label": label,
                 "file": path.name, "piece": k}
                for k in range(n_trials)
            )
            segments.append(make_segment(raw, montage="standard_1020",
                                         line_freq=self.site_mains_freq(), where=str(path)))
        trials = pd.DataFrame(rows)
        if self.config.balance:
            keep = _balance(trials["label"].to_numpy(), seed=int(subject[1:]))
            trials = trials.iloc[keep]
        return Recording(subject, segments, trials, duration, EVENT_ID,
                         source=str(self.path)).validate()


def _read_scalp(path: Path) -> mne.io.BaseRaw:
    """Read one file and keep the 19 scalp channels with 10-20 names."""
    match = _FILE.match(path.name)
    # truncated files and undefined scaling: MNE would only warn (hidden by verbose="error")
    check_edf(path, fix_hint("copy the file again from PhysioNet eegmat",
                             f"S{match[1]}" if match else None))
    try:
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    except Exception as exc:  # MNE raises several types for damaged EDF files
        raise DataError(
            f"{path} could not be read as EDF ({exc}); the file is corrupt or truncated: "
            "copy it again from PhysioNet eegmat"
        ) from exc
    types = {}
    for name in raw.ch_names:
        if "ECG" in name.upper():
            types[name] = "ecg"
        elif "A2-A1" in name.upper():
            types[name] = "misc"
    raw.set_channel_types(types, verbose="error")
    raw.pick("eeg")
    raw.rename_channels(
        lambda name: _OLD_NAMES.get(name.removeprefix("EEG ").strip(),
                                    name.removeprefix("EEG ").strip())
    )
    if len(raw.ch_names) != 19:
        raise DataError(
            f"{path}: expected 19 scalp EEG channels, found {len(raw.ch_names)} "
            f"({raw.ch_names}); is this an eegmat file?"
        )
    return raw


def _balance(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices that subsample every class to the size of the smallest, in original order."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    n = counts.min()
    keep = [rng.choice(np.flatnonzero(labels == c), size=n, replace=False) for c in classes]
    return np.sort(np.concatenate(keep))

"""KU Leuven auditory attention detection (Das et al.): left vs right attended ear, ``.mat``.

Layout: one MATLAB v5 file per subject, ``S1.mat`` .. ``S16.mat``. Each holds ``trials``, a
cell (or struct) array of trials; trial ``t`` has ``RawData.EegData`` (samples x 64 channels),
``FileHeader.SampleRate`` (128 Hz in the preprocessed release) and ``attended_ear`` (``'L'`` or
``'R'``). The first 8 trials are the 6-minute competing-talker presentations; later ones are
repetitions of shorter excerpts, so :attr:`eegcrp.config.KULConfig.n_trials` selects the first
``n`` trials. Channels are the 64 BioSemi channels in the order of MNE's ``biosemi64``
montage.

Units: the release stores the EEG in microvolts (BioSemi's native unit); the loader assumes
this and multiplies by 1e-6 to get volts.

Each trial (a 6-minute presentation) is recorded on its own, so each is one continuous
segment of the subject's recording and holds exactly one trial starting at its first sample.
Trials of unequal length are cut to the shortest (the segments keep all their samples, so
filters still see them).

Reference: Das, Francart & Bertrand (2016), "Auditory attention detection dataset KULeuven",
Zenodo, doi:10.5281/zenodo.3997352.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pandas as pd
import scipy.io

from .base import BaseLoader, DataError, Recording, make_segment

__all__ = ["CHANNELS", "EVENT_ID", "KULLoader"]

logger = logging.getLogger(__name__)

_FILE = re.compile(r"^S(\d+)\.mat$")
#: The 64 BioSemi channels in the order of MNE's ``biosemi64`` montage (= the data columns).
# (written out, not built at import; tests/data/test_kul.py checks it against MNE's)
CHANNELS: list[str] = [
    "Fp1", "AF7", "AF3", "F1", "F3", "F5", "F7", "FT7", "FC5", "FC3", "FC1", "C1", "C3", "C5",
    "T7", "TP7", "CP5", "CP3", "CP1", "P1", "P3", "P5", "P7", "P9", "PO7", "PO3", "O1", "Iz",
    "Oz", "POz", "Pz", "CPz", "Fpz", "Fp2", "AF8", "AF4", "AFz", "Fz", "F2", "F4", "F6", "F8",
    "FT8", "FC6", "FC4", "FC2", "FCz", "Cz", "C2", "C4", "C6", "T8", "TP8", "CP6", "CP4",
    "CP2", "P2", "P4", "P6", "P8", "P10", "PO8", "PO4", "O2",
]
EVENT_ID = {"left_ear": 1, "right_ear": 2}
_EAR = {"L": "left_ear", "R": "right_ear"}
#: The release stores microvolts; multiply to get volts.
_UNIT = 1e-6


class KULLoader(BaseLoader):
    """Loader for the KU Leuven auditory attention files (see module docstring)."""

    name = "kul_aad"
    task = "auditory_attention"
    default_folder = "kul_aad"
    mains_freq = 50.0  # Leuven, Belgium

    def _index(self) -> dict[int, Path]:
        folder = self._check_folder()
        index: dict[int, Path] = {}
        for path in sorted(folder.iterdir()):
            match = _FILE.match(path.name)
            if match:
                index[int(match[1])] = path
        return index

    def subject_ids(self) -> list[str]:
        return self._select({num: f"S{num}" for num in self._index()})

    def files(self, subject: str) -> list[Path]:
        match = re.fullmatch(r"S(\d+)", subject)
        path = self._index().get(int(match[1])) if match else None
        if path is None:
            raise DataError(
                f"kul_aad: no file {subject}.mat for subject {subject} in {self.path}; "
                "check dataset.path and dataset.subjects"
            )
        return [path]

    def load_recording(self, subject: str) -> Recording:
        (path,) = self.files(subject)
        arrays, labels, sfreq, extra = _read_mat(path, self.config.n_trials)
        info = mne.create_info(CHANNELS, sfreq, "eeg")
        segments = [
            make_segment(mne.io.RawArray(data, info, verbose="error"), montage="biosemi64",
                         line_freq=self.site_mains_freq(), where=str(path))
            for data in arrays
        ]
        shortest = min(seg.n_times for seg in segments)
        trials = pd.DataFrame({"segment": np.arange(len(segments)), "onset": 0.0,
                               "label": labels}).join(extra)
        return Recording(subject, segments, trials, shortest / sfreq, EVENT_ID,
                         source=str(path)).validate()


def _field(obj: Any, name: str, path: Path, where: str) -> Any:
    """Attribute ``name`` of a MATLAB struct, or a DataError naming the file and trial."""
    if not hasattr(obj, name):
        found = sorted(getattr(obj, "_fieldnames", None) or [])
        raise DataError(
            f"{path}: {where} has no field {name!r} (found {found}); expected the KU Leuven "
            "release with trials{t}.RawData.EegData, .FileHeader.SampleRate, .attended_ear"
        )
    return getattr(obj, name)


def _as_text(value: Any) -> str:
    """MATLAB char or scalar (str, number, 1-element array) -> stripped str; '' otherwise."""
    arr = np.asarray(value)
    if arr.size != 1:
        return ""
    return str(arr.item()).strip()


def _read_mat(
    path: Path, n_trials: int
) -> tuple[list[np.ndarray], list[str], float, pd.DataFrame]:
    """Read one subject: (channels x times per trial in volts, labels, sfreq, metadata)."""
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5)
        raise DataError(
            f"{path} is a MATLAB v7.3 (HDF5) file ({exc}); re-save it in MATLAB with "
            "save(..., '-v7') or use the original v5 files of the release"
        ) from exc
    except Exception as exc:  # scipy raises several types for damaged files
        raise DataError(
            f"{path} could not be read as a MATLAB file ({exc}); the file is corrupt or "
            "truncated: copy it again from the source"
        ) from exc
    if "trials" not in mat:
        raise DataError(
            f"{path} has no variable 'trials' (found {sorted(k for k in mat if k[0] != '_')}); "
            "expected a KU Leuven AAD subject file (S<n>.mat)"
        )
    trials = mat["trials"]
    trials = list(np.atleast_1d(trials).ravel()) if isinstance(trials, np.ndarray) else [trials]
    if len(trials) < n_trials:
        raise DataError(
            f"{path} holds {len(trials)} trial(s) but dataset.n_trials is {n_trials}; lower "
            "dataset.n_trials or copy the complete file again"
        )
    arrays, labels, rates, extra = [], [], [], []
    for index, trial in enumerate(trials[:n_trials]):
        where = f"trial {index + 1}"
        raw_data = _field(trial, "RawData", path, where)
        eeg = np.asarray(_field(raw_data, "EegData", path, f"{where}.RawData"))
        if eeg.ndim != 2 or eeg.shape[1] != len(CHANNELS) or eeg.dtype.kind not in "iuf":
            raise DataError(
                f"{path}: {where} has EegData of shape {eeg.shape} ({eeg.dtype}), expected "
                "numbers of shape (samples, 64 channels); the file is not the 64-channel KU "
                "Leuven release"
            )
        header = _field(trial, "FileHeader", path, where)
        rate_value = _field(header, "SampleRate", path, f"{where}.FileHeader")
        try:
            rate = float(np.asarray(rate_value).item())
        except (TypeError, ValueError):
            rate = float("nan")
        if not np.isfinite(rate) or rate <= 0:
            raise DataError(
                f"{path}: {where} has FileHeader.SampleRate {rate_value!r}, expected a "
                "positive number of Hz; the file is damaged"
            )
        ear_value = _field(trial, "attended_ear", path, where)
        ear = _as_text(ear_value).upper()
        if ear not in _EAR:
            raise DataError(
                f"{path}: {where} has attended_ear {ear_value!r}, expected 'L' or 'R'; the "
                "file is damaged or not from the KU Leuven release"
            )
        arrays.append(eeg.astype(np.float64, copy=False))
        labels.append(_EAR[ear])
        rates.append(rate)
        extra.append(
            {
                "condition": _as_text(getattr(trial, "condition", "")),
                "attended_track": _as_text(getattr(trial, "attended_track", "")),
            }
        )
    if len(set(rates)) != 1:
        raise DataError(
            f"{path}: trials have different sampling rates {sorted(set(rates))} Hz; resample "
            "them to one rate before loading"
        )
    lengths = [len(a) for a in arrays]
    shortest = min(lengths)
    if shortest == 0:
        raise DataError(
            f"{path}: trial {lengths.index(0) + 1} holds no samples; the file is damaged: "
            "copy it again from the source"
        )
    if len(set(lengths)) > 1:
        logger.info(
            "%s: trials have %d to %d samples; truncating all to the shortest (%d)",
            path, shortest, max(lengths), shortest,
        )
    # samples x channels (µV) -> channels x samples (V)
    return [a.T * _UNIT for a in arrays], labels, rates[0], pd.DataFrame(extra)

"""PhysioNet EEG Motor Movement/Imagery (EEGMMIDB): imagined left vs right fist.

Runs 4, 8 and 12 are the left/right fist imagery runs: annotation ``T1`` marks imagined left
fist, ``T2`` imagined right fist (``T0`` = rest, not used). 64 channels at 160 Hz, recorded in
the USA (60 Hz mains).

Two folder layouts are read:

* flat: ``S001R04.edf`` ... directly in the folder (as in ``$EEGCRP_DATA/eegmmidb_S001``);
* MNE's ``eegbci`` layout: ``.../S001/S001R04.edf`` anywhere below the folder.

With ``download: true`` missing runs are fetched by :func:`mne.datasets.eegbci.load_data`.

Reference: Schalk et al., BCI2000, IEEE TBME 51(6), 2004; Goldberger et al., PhysioNet, 2000.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from .base import BaseLoader, DataError, make_epochs

__all__ = ["EEGMMIDBLoader"]

logger = logging.getLogger(__name__)

_FILE = re.compile(r"^S(\d{3})R(\d{2})\.edf$", re.IGNORECASE)
EVENT_ID = {"left_fist": 1, "right_fist": 2}
_MARKERS = {"T1": "left_fist", "T2": "right_fist"}
_IMAGERY_RUNS = {4, 8, 12}


class EEGMMIDBLoader(BaseLoader):
    """Loader for EEGMMIDB imagery runs (see module docstring)."""

    name = "eegmmidb"
    task = "motor_imagery"
    default_folder = "eegmmidb_S001"
    mains_freq = 60.0  # New York State, USA

    def _index(self) -> dict[int, dict[int, Path]]:
        folder = self.path
        if not folder.is_dir():
            if self.config.download:
                folder.mkdir(parents=True, exist_ok=True)
            else:
                self._check_folder()
        index: dict[int, dict[int, Path]] = {}
        for path in sorted(folder.rglob("*.edf")):
            match = _FILE.match(path.name)
            if match:
                index.setdefault(int(match[1]), {})[int(match[2])] = path
        return index

    def subject_ids(self) -> list[str]:
        bad = sorted(set(self.config.runs) - _IMAGERY_RUNS)
        if bad:
            raise DataError(
                f"eegmmidb: runs {bad} are not left/right fist imagery runs; use runs from "
                f"{sorted(_IMAGERY_RUNS)}"
            )
        index = self._index()
        if self.config.download and self.config.subjects:
            for num in self.config.subjects:
                index.setdefault(num, {})
            return [f"S{num:03d}" for num in self.config.subjects]
        available = {num: f"S{num:03d}" for num, runs in index.items()
                     if all(r in runs for r in self.config.runs)}
        if index and not available:
            raise DataError(
                f"eegmmidb: no subject in {self.path} has all runs {self.config.runs}; set "
                "dataset.runs or dataset.download: true"
            )
        return self._select(available)

    def files(self, subject: str) -> list[Path]:
        num = int(subject[1:])
        found = self._index().get(num, {})
        missing = [r for r in self.config.runs if r not in found]
        if missing and self.config.download:
            paths = mne.datasets.eegbci.load_data(
                num, missing, path=str(self.path), update_path=False, verbose="error"
            )
            found.update({int(_FILE.match(Path(p).name)[2]): Path(p) for p in paths})
            missing = [r for r in self.config.runs if r not in found]
        if missing:
            raise DataError(
                f"eegmmidb: subject {subject} lacks runs {missing} in {self.path}; copy them "
                "there or set dataset.download: true (needs internet)"
            )
        return [found[r] for r in self.config.runs]

    def load_subject(self, subject: str) -> mne.BaseEpochs:
        arrays, labels, runs = [], [], []
        ch_names: list[str] | None = None
        sfreq = None
        for path, run in zip(self.files(subject), self.config.runs, strict=True):
            raw = _read_edf(path)
            if ch_names is None:
                ch_names, sfreq = raw.ch_names, raw.info["sfreq"]
            elif raw.ch_names != ch_names or raw.info["sfreq"] != sfreq:
                raise DataError(f"{path}: channels or sfreq differ from the subject's other runs")
            data, lab = _cut_trials(raw, self.config.tmin, self.config.tmax, path)
            arrays.append(data)
            labels.extend(lab)
            runs.extend([run] * len(lab))
        return make_epochs(
            np.concatenate(arrays),
            ch_names=ch_names,
            sfreq=sfreq,
            labels=labels,
            event_id=EVENT_ID,
            subject=subject,
            montage="standard_1005",
            metadata=pd.DataFrame({"run": runs}),
            source=str(self.path),
            line_freq=self.site_mains_freq(),
        )


def _read_edf(path: Path) -> mne.io.BaseRaw:
    try:
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    except Exception as exc:  # MNE raises ValueError/RuntimeError/OSError for bad EDFs
        raise DataError(
            f"{path} could not be read as EDF ({exc}); the file is corrupt or truncated: "
            "download it again (PhysioNet eegmmidb)"
        ) from exc
    # "Fc5." -> "FC5", "Cz.." -> "Cz": MNE's helper knows this dataset's naming.
    mne.datasets.eegbci.standardize(raw)
    return raw


def _cut_trials(
    raw: mne.io.BaseRaw, tmin: float, tmax: float, path: Path
) -> tuple[np.ndarray, list[str]]:
    """Cut [tmin, tmax) around every T1/T2 annotation; trials running past the end are dropped."""
    sfreq = raw.info["sfreq"]
    n_times = int(round((tmax - tmin) * sfreq))
    data = raw.get_data()
    trials, labels = [], []
    for onset, desc in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        if desc not in _MARKERS:
            continue
        start = int(round((onset + tmin) * sfreq)) - raw.first_samp
        if start < 0 or start + n_times > data.shape[1]:
            logger.warning("%s: %s at %.1f s runs past the recording; dropped", path.name, desc,
                           onset)
            continue
        trials.append(data[:, start:start + n_times])
        labels.append(_MARKERS[desc])
    if not trials:
        raise DataError(
            f"{path}: no T1/T2 imagery annotations; is this a left/right fist run (4, 8, 12)?"
        )
    return np.stack(trials), labels

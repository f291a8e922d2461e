"""PhysioNet EEG Motor Movement/Imagery (EEGMMIDB): imagined left vs right fist.

Runs 4, 8 and 12 are the left/right fist imagery runs: annotation ``T1`` marks imagined left
fist, ``T2`` imagined right fist (``T0`` = rest, not used). 64 channels at 160 Hz, recorded in
the USA (60 Hz mains).

Two folder layouts are read:

* flat: ``S001R04.edf`` ... directly in the folder (as in ``$EEGCRP_DATA/eegmmidb_mi``, the
  default: 10 subjects S001-S010);
* MNE's ``eegbci`` layout: ``.../S001/S001R04.edf`` anywhere below the folder.

With ``download: true`` missing runs are fetched by :func:`mne.datasets.eegbci.load_data`.

Each run is one continuous segment of the subject's recording; a trial spans ``tmin`` to
``tmax`` around its T1/T2 marker (end sample excluded). Trials running past the end of a
run are dropped with a warning. Metadata: ``run``.

Reference: Schalk et al., BCI2000, IEEE TBME 51(6), 2004; Goldberger et al., PhysioNet, 2000.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import mne
import pandas as pd

from .base import BaseLoader, DataError, Recording, make_segment
from .edf import check_edf, fix_hint

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
    default_folder = "eegmmidb_mi"
    mains_freq = 60.0  # New York State, USA
    trial_length_hint = "widen dataset.tmin/tmax (cues last about 4.1 s)"

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
        for num in sorted(set(index) - set(available)):
            lacking = sorted(r for r in self.config.runs if r not in index[num])
            logger.warning("eegmmidb: S%03d lacks run(s) %s in %s; skipped (copy them, or set "
                           "dataset.runs)", num, lacking, self.path)
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

    def load_recording(self, subject: str) -> Recording:
        segments: list[mne.io.BaseRaw] = []
        rows: list[dict[str, object]] = []
        for path, run in zip(self.files(subject), self.config.runs, strict=True):
            raw = _read_edf(path)
            if segments and (raw.ch_names != segments[0].ch_names
                             or raw.info["sfreq"] != segments[0].info["sfreq"]):
                raise DataError(f"{path}: channels or sfreq differ from the subject's other runs")
            for onset, label in _trial_onsets(raw, self.config.tmin, self.config.tmax, path):
                rows.append({"segment": len(segments), "onset": onset, "label": label,
                             "run": run})
            segments.append(make_segment(raw, montage="standard_1005",
                                         line_freq=self.site_mains_freq(), where=str(path)))
        return Recording(
            subject, segments, pd.DataFrame(rows), self.config.tmax - self.config.tmin,
            EVENT_ID, source=str(self.path),
        ).validate()


def _read_edf(path: Path) -> mne.io.BaseRaw:
    match = _FILE.match(path.name)
    # truncated files and undefined scaling: MNE would only warn (hidden by verbose="error")
    check_edf(path, fix_hint("delete it and download it again (PhysioNet eegmmidb, or "
                             "dataset.download: true)", f"S{match[1]}" if match else None))
    try:
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    except Exception as exc:  # MNE raises ValueError/RuntimeError/OSError for bad EDFs
        raise DataError(
            f"{path} could not be read as EDF ({exc}); the file is corrupt or truncated: "
            "download it again (PhysioNet eegmmidb)"
        ) from exc
    # "Fc5." -> "FC5", "Cz.." -> "Cz": MNE's helper knows this dataset's naming.
    mne.datasets.eegbci.standardize(raw)
    raw.pick("eeg")
    return raw


def _trial_onsets(
    raw: mne.io.BaseRaw, tmin: float, tmax: float, path: Path
) -> list[tuple[float, str]]:
    """(onset in s from the run's first sample, class) of every T1/T2 trial inside the run."""
    sfreq = raw.info["sfreq"]
    n_times = int(round((tmax - tmin) * sfreq))
    out = []
    for onset, desc in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        if desc not in _MARKERS:
            continue
        start = int(round((onset + tmin) * sfreq)) - raw.first_samp
        if start < 0 or start + n_times > raw.n_times:
            logger.warning("%s: %s at %.1f s runs past the recording; dropped", path.name, desc,
                           onset)
            continue
        out.append((start / sfreq, _MARKERS[desc]))
    if not out:
        raise DataError(
            f"{path}: no T1/T2 imagery annotations; is this a left/right fist run (4, 8, 12)?"
        )
    return out

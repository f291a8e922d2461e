"""BCI Competition IV dataset 2b (Graz): left vs right hand motor imagery, epoched ``.mat``.

Layout: one file per subject and session, ``B<ss><nn><T|E>.mat`` (``B0101T.mat`` = subject 1,
session 01, training). Each holds ``data`` (time x channel x trial, µV, 250 Hz) and ``label``
(1 = left hand, 2 = right hand). Channels are the bipolar derivations C3, Cz, C4: they are
marked as such (coil type ``FIFFV_COIL_EEG_BIPOLAR``, see :func:`eegcrp.data.is_bipolar`) and
placed at the C3/Cz/C4 positions of the 10-05 template (the centres of the derivations), so
``preprocessing.car: true`` is refused (an average over bipolar derivations is no reference).

Epoched source: the files hold only 4-s epochs, already band-passed by the source to about
8-30 Hz (PSD more than three orders of magnitude lower below 6 Hz and above 30 Hz, see the
data's MANIFEST). The loader therefore returns an *epoched* recording (each trial its own
segment, ``epoched=True``) and declares ``prefiltered=(8.0, 30.0)``. Preprocessing then
skips every filter step that lies outside that band (the default 1 Hz high-pass, 60 Hz
low-pass and 50 Hz notch): they would change nothing in the band but, run on 4-s epochs
without context, the 3.3-s high-pass FIR would distort every epoch. Steps inside the band
(e.g. ``l_freq: 10``) run on each whole epoch; preprocessing states which in ``notes``.

Reference: Leeb et al., BCI Competition 2008 - Graz data set B.
"""

from __future__ import annotations

import re
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import scipy.io

from .base import BaseLoader, DataError, Recording, make_montage
from .montage import mark_bipolar

__all__ = ["BCIIV2bLoader"]

_FILE = re.compile(r"^B(\d{2})(\d{2}[TE])\.mat$")
CHANNELS = ["C3", "Cz", "C4"]
EVENT_ID = {"left_hand": 1, "right_hand": 2}
SFREQ = 250.0
#: Pass band the source applied (inferred from the data, see the module docstring).
PREFILTERED = (8.0, 30.0)


class BCIIV2bLoader(BaseLoader):
    """Loader for the epoched BCI IV 2b files (see module docstring)."""

    name = "bciciv2b"
    task = "motor_imagery"
    default_folder = "bciciv2b_epoched"
    mains_freq = 50.0  # Graz, Austria

    def _index(self) -> dict[int, dict[str, Path]]:
        return self._scan(_FILE)

    def subject_ids(self) -> list[str]:
        index = self._index()
        sessions = self.config.sessions
        available = {
            num: f"B{num:02d}" for num, found in index.items() if all(s in found for s in sessions)
        }
        if index and not available:
            raise DataError(
                f"bciciv2b: no subject in {self.path} has all sessions {sessions}; set "
                "dataset.sessions to sessions that exist (e.g. [01T, 02T, 03T])"
            )
        return self._select(available)

    def files(self, subject: str) -> list[Path]:
        num = int(subject[1:])
        found = self._index().get(num, {})
        missing = [s for s in self.config.sessions if s not in found]
        if missing:
            raise DataError(f"bciciv2b: subject {subject} lacks sessions {missing} in {self.path}")
        return [found[s] for s in self.config.sessions]

    def load_recording(self, subject: str) -> Recording:
        arrays, labels, sessions = [], [], []
        for path, session in zip(self.files(subject), self.config.sessions, strict=True):
            data, label = _read_mat(path)
            arrays.append(data)
            labels.extend("left_hand" if v == 1 else "right_hand" for v in label)
            sessions.extend([session] * len(label))
        return Recording.from_trials(
            np.concatenate(arrays),
            self._info(),
            labels,
            EVENT_ID,
            subject,
            metadata=pd.DataFrame({"session": sessions}),
            prefiltered=PREFILTERED,
            source=str(self.path),
        ).validate()

    def _info(self) -> mne.Info:
        """C3/Cz/C4 at 250 Hz: bipolar, template positions, the site's mains frequency."""
        info = mne.create_info(CHANNELS, SFREQ, "eeg")
        info.set_montage(make_montage("standard_1005"), verbose="error")
        mark_bipolar(info)
        with info._unlock():
            info["line_freq"] = self.site_mains_freq()
        return info


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one session: (trials x channels x times in volts, labels 1/2)."""
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types for damaged files
        raise DataError(
            f"{path} could not be read as a MATLAB file ({exc}); the file is corrupt or "
            "truncated: copy it again from the source"
        ) from exc
    for key in ("data", "label"):
        if key not in mat:
            raise DataError(
                f"{path} has no variable {key!r} (found {sorted(k for k in mat if k[0] != '_')}); "
                "expected BCI IV 2b epoched files with 'data' and 'label'"
            )
    data = np.asarray(mat["data"], dtype=np.float64)
    label = np.asarray(mat["label"]).ravel().astype(int)
    if data.ndim != 3 or data.shape[1] != len(CHANNELS) or data.shape[2] != len(label):
        raise DataError(
            f"{path}: 'data' has shape {data.shape}, expected (time, 3 channels, "
            f"{len(label)} trials)"
        )
    bad = sorted(set(label) - {1, 2})
    if bad:
        raise DataError(f"{path}: labels {bad} found; BCI IV 2b labels are 1 (left), 2 (right)")
    # time x channel x trial (µV) -> trial x channel x time (V)
    return np.transpose(data, (2, 1, 0)) * 1e-6, label

"""In-house recordings in a folder: FIF, EDF/BDF, BrainVision, EEGLAB and XDF files.

Every file below ``dataset.path`` that matches ``dataset.pattern`` and has a known
extension is read:

* ``.fif``/``.fif.gz`` (raw), ``.edf``, ``.bdf``, ``.vhdr`` (BrainVision) and ``.set``
  (EEGLAB, continuous) with :func:`mne.io.read_raw`;
* ``.xdf``/``.xdfz`` with :func:`eegcrp.data.xdf.read_xdf` (pyxdf): the EEG stream
  (``dataset.xdf_eeg_stream`` or the first stream of type EEG) becomes the data, the marker
  stream (``dataset.xdf_marker_stream`` or the first stream of type Markers) the
  annotations.

The subject of a file is group 1 of ``dataset.subject_regex`` searched in its path relative
to ``dataset.path``; the files of one subject are read in path order, each one continuous
segment of the subject's recording. Subject numbers for ``dataset.subjects`` are the ids
themselves when every id is a distinct integer (``sub-01`` -> 1), otherwise the 1-based
positions in the sorted ids.

Events come from the annotations (the description, or for BrainVision-style
``Type/description`` also the part after the first ``/``), or, when no annotation matches,
from the stim channel(s) (codes written as strings, ``"1"``). ``dataset.events`` maps them to
class names; the classes, sorted by name, are coded 1..K. A trial spans ``tmin`` to ``tmax``
around its marker, end sample excluded (``round((tmax - tmin) * sfreq)`` samples); trials
running past the recording are dropped with a warning. Channels are renamed
(``dataset.rename``), picked (``dataset.channels`` in that order, or all EEG channels) and
given the montage ``dataset.montage``; picked channels are treated as EEG. The metadata
hold ``session`` and ``run`` (BIDS ``ses-``/``run-`` entities of the path, empty when
absent) and ``file``.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pandas as pd

from .base import BaseLoader, DataError, Recording, make_segment
from .edf import EDF_EXTENSIONS, check_edf, fix_hint
from .xdf import XDF_EXTENSIONS, read_xdf

__all__ = ["EXTENSIONS", "FolderLoader"]

logger = logging.getLogger(__name__)

#: File endings read by the loader (lower case).
EXTENSIONS = (".fif", ".fif.gz", ".edf", ".bdf", ".vhdr", ".set", *XDF_EXTENSIONS)
_SESSION = re.compile(r"ses-([A-Za-z0-9]+)")
_RUN = re.compile(r"run-([A-Za-z0-9]+)")
#: Parts of MNE reader warnings that mean the file holds fewer samples than its header says.
_TRUNCATED = ("does not match the file size",)


def _extension(path: Path) -> str | None:
    name = path.name.lower()
    for ext in EXTENSIONS:
        if name.endswith(ext):
            return ext
    return None


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort ``"2"`` before ``"10"``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


class FolderLoader(BaseLoader):
    """Loader for a folder of recordings in common formats (see module docstring)."""

    name = "folder"
    default_folder = "folder"
    mains_freq = None  # config or the recordings' line_freq
    trial_length_hint = "widen dataset.tmin/tmax"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._line_freq: float | None = None
        self._files: dict[str, list[Path]] | None = None

    @property
    def task(self) -> str:  # type: ignore[override]
        """The task family named by ``dataset.task``."""
        return str(self.config.task)

    @property
    def event_id(self) -> dict[str, int]:
        """Class name -> code: the classes of ``dataset.events`` sorted by name, 1..K."""
        classes = sorted(set(self.config.events.values()))
        return {name: code for code, name in enumerate(classes, start=1)}

    def site_mains_freq(self) -> float | None:
        """``dataset.mains_freq``, else the recordings' ``line_freq`` (known after loading)."""
        if self.config.mains_freq is not None:
            return float(self.config.mains_freq)
        return self._line_freq

    # ------------------------------------------------------------------ files
    def _index(self) -> dict[str, list[Path]]:
        """Subject id -> its files (natural order of ids), scanned once per loader."""
        if self._files is None:
            self._files = self._scan()
        return self._files

    def _scan(self) -> dict[str, list[Path]]:
        folder = self._check_folder()
        try:
            regex = re.compile(self.config.subject_regex)
        except re.error as exc:
            raise DataError(
                f"folder: dataset.subject_regex {self.config.subject_regex!r} is not a valid "
                f"regular expression ({exc}); e.g. 'sub-([A-Za-z0-9]+)'"
            ) from exc
        if regex.groups < 1:
            raise DataError(
                f"folder: dataset.subject_regex {self.config.subject_regex!r} has no group; "
                "put the subject id in parentheses, e.g. 'sub-([A-Za-z0-9]+)'"
            )
        index: dict[str, list[Path]] = {}
        unmatched: list[str] = []
        for path in sorted(folder.glob(self.config.pattern)):
            if not path.is_file() or _extension(path) is None:
                continue
            relative = path.relative_to(folder).as_posix()
            match = regex.search(relative)
            if match is None or not match.group(1):
                unmatched.append(relative)
                continue
            index.setdefault(match.group(1), []).append(path)
        if unmatched:
            logger.warning(
                "folder: %d file(s) in %s do not match subject_regex %r and are ignored: %s",
                len(unmatched), folder, self.config.subject_regex, unmatched[:5],
            )
        if not index:
            hint = (
                f"{len(unmatched)} file(s) such as {unmatched[0]!r} do not match "
                f"dataset.subject_regex {self.config.subject_regex!r}: fix the regex"
                if unmatched
                else f"none matches dataset.pattern {self.config.pattern!r} with an extension "
                f"of {list(EXTENSIONS)}: check dataset.path and dataset.pattern"
            )
            raise DataError(f"folder: no recognised recordings in {folder}; {hint}")
        return {sid: index[sid] for sid in sorted(index, key=_natural_key)}

    @staticmethod
    def _numbers(ids: list[str]) -> dict[int, str]:
        if all(s.isdigit() for s in ids) and len({int(s) for s in ids}) == len(ids):
            return {int(s): s for s in ids}
        return {pos: s for pos, s in enumerate(ids, start=1)}

    def subject_ids(self) -> list[str]:
        return self._select(self._numbers(list(self._index())))

    def files(self, subject: str) -> list[Path]:
        index = self._index()
        if subject not in index:
            raise DataError(
                f"folder: no files of subject {subject!r} in {self.path}; subjects found: "
                f"{list(index)}"
            )
        return index[subject]

    # ------------------------------------------------------------------ loading
    def load_recording(self, subject: str) -> Recording:
        paths = self.files(subject)
        raws: list[mne.io.BaseRaw] = []
        rows: list[dict[str, Any]] = []
        found: set[str] = set()
        line_freq = self.config.mains_freq
        tmin, tmax = self.config.tmin, self.config.tmax
        for path in paths:
            raw = self._read(path, subject)
            if line_freq is None and raw.info.get("line_freq"):
                line_freq = float(raw.info["line_freq"])
            markers, seen = self._markers(raw)
            found |= seen
            raw = self._pick(raw, path)
            if raws and raw.ch_names != raws[0].ch_names:
                raise DataError(
                    f"{path} (subject {subject}) has channels {raw.ch_names} but "
                    f"{paths[0].name} has {raws[0].ch_names}; set dataset.channels to the "
                    "channels common to all files"
                )
            if raws and raw.info["sfreq"] != raws[0].info["sfreq"]:
                raise DataError(
                    f"{path} (subject {subject}) is sampled at {raw.info['sfreq']} Hz but "
                    f"{paths[0].name} at {raws[0].info['sfreq']} Hz; resample the files to "
                    "one rate"
                )
            sfreq = float(raw.info["sfreq"])
            n_times = round((tmax - tmin) * sfreq)
            offset = round(tmin * sfreq)
            relative = path.relative_to(self.path).as_posix()
            session = _SESSION.search(relative)
            run = _RUN.search(relative)
            dropped = 0
            for sample, label in markers:
                start = sample + offset
                if start < 0 or start + n_times > raw.n_times:
                    dropped += 1
                    continue
                rows.append({
                    "segment": len(raws), "onset": start / sfreq, "label": label,
                    "session": session.group(1) if session else "",
                    "run": run.group(1) if run else "", "file": relative,
                })
            if dropped:
                logger.warning(
                    "%s: %d trial(s) run past the recording for tmin=%s, tmax=%s; dropped",
                    path, dropped, tmin, tmax,
                )
            if not markers:
                logger.info("%s: no markers of dataset.events; file contributes no trials", path)
            raws.append(raw)
        if not rows:
            shown = sorted(found, key=_natural_key)[:20]
            raise DataError(
                f"folder: subject {subject} ({', '.join(p.name for p in paths)}) has no trials "
                f"of the classes in dataset.events {dict(self.config.events)}; markers found: "
                f"{shown or 'none'}; map these markers in dataset.events (or check tmin/tmax)"
            )
        if line_freq is None:
            raise DataError(
                f"folder: the files of subject {subject} do not state their mains frequency "
                "(line_freq); set dataset.mains_freq to 50 or 60 (the mains of the recording "
                "site)"
            )
        self._line_freq = float(line_freq)
        where = f"{', '.join(str(p) for p in paths)} (subject {subject})"
        segments = [make_segment(raw, montage=self.config.montage, line_freq=self._line_freq,
                                 where=where) for raw in raws]
        return Recording(subject, segments, pd.DataFrame(rows), tmax - tmin, self.event_id,
                         source=", ".join(str(p) for p in paths)).validate()

    def _read(self, path: Path, subject: str) -> mne.io.BaseRaw:
        """Read one file as preloaded Raw with the configured renames applied."""
        if _extension(path) in EDF_EXTENSIONS:
            # MNE only warns about these; the warnings check below would miss bad scaling
            check_edf(path, fix_hint("copy or export the file again from the recording "
                                     "computer", subject))
        if _extension(path) in XDF_EXTENSIONS:
            raw = read_xdf(path, self.config.xdf_eeg_stream, self.config.xdf_marker_stream)
        else:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    raw = mne.io.read_raw(path, preload=True, verbose="warning")
            except Exception as exc:  # MNE's readers raise many types for damaged files
                raise DataError(
                    f"{path} could not be read ({type(exc).__name__}: {exc}); the file is "
                    "corrupt, truncated or incomplete (BrainVision needs .vhdr, .vmrk and .eeg; "
                    "EEGLAB its .fdt): copy it again or remove it from the folder"
                ) from exc
            for warning in caught:
                message = str(warning.message)
                if any(sign in message for sign in _TRUNCATED):
                    raise DataError(
                        f"{path} is truncated: {message} Copy the file again from the "
                        "recording computer (or repair its header if the recording was never "
                        "stopped)"
                    )
                logger.warning("%s: %s", path, message)
        rename = {old: new for old, new in self.config.rename.items() if old in raw.ch_names}
        if rename:
            try:
                raw.rename_channels(rename, verbose="error")
            except ValueError as exc:
                raise DataError(
                    f"{path}: dataset.rename {rename} fails ({exc}); make the new names unique"
                ) from exc
        return raw

    def _markers(self, raw: mne.io.BaseRaw) -> tuple[list[tuple[int, str]], set[str]]:
        """Mapped markers as (sample index into the data, class) and all marker names seen."""
        events = self.config.events
        seen: set[str] = set()
        markers: list[tuple[int, str]] = []
        if len(raw.annotations):
            # MNE's own onset -> sample conversion (meas_date/first_samp conventions)
            names = sorted({str(d) for d in raw.annotations.description})
            found, codes = mne.events_from_annotations(
                raw, event_id={name: i for i, name in enumerate(names, start=1)},
                verbose="error",
            )
            desc_of = {code: name for name, code in codes.items()}
            for sample, code in zip(found[:, 0] - raw.first_samp, found[:, 2], strict=True):
                desc = desc_of[int(code)]
                seen.add(desc)
                key = desc if desc in events else desc.split("/", 1)[-1]
                if key in events:
                    markers.append((int(sample), events[key]))
        if markers:
            return markers, seen
        stim = mne.pick_types(raw.info, stim=True, exclude=())
        if len(stim):
            try:
                found = mne.find_events(
                    raw, stim_channel=[raw.ch_names[i] for i in stim], shortest_event=1,
                    consecutive=True, initial_event=True, verbose="error",
                )
            except ValueError as exc:
                logger.warning("%s: stim channel unusable (%s)", raw.filenames, exc)
                found = np.empty((0, 3), dtype=int)
            for sample, code in zip(found[:, 0] - raw.first_samp, found[:, 2], strict=True):
                seen.add(str(int(code)))
                if str(int(code)) in events:
                    markers.append((int(sample), events[str(int(code))]))
        return markers, seen

    def _pick(self, raw: mne.io.BaseRaw, path: Path) -> mne.io.BaseRaw:
        """The configured channels (in that order) or all EEG channels, typed EEG."""
        if self.config.channels is not None:
            missing = [c for c in self.config.channels if c not in raw.ch_names]
            if missing:
                raise DataError(
                    f"{path} lacks channel(s) {missing} of dataset.channels (it has "
                    f"{raw.ch_names}); fix dataset.channels or map names with dataset.rename"
                )
            names = list(self.config.channels)
        else:
            names = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True, exclude=())]
            if not names:
                raise DataError(
                    f"{path} has no EEG channels (channels: {raw.ch_names}); name the channels "
                    "to use in dataset.channels"
                )
        raw.reorder_channels(names)
        other = {n: "eeg" for n, t in zip(raw.ch_names, raw.get_channel_types(), strict=True)
                 if t != "eeg"}
        if other:
            raw.set_channel_types(other, verbose="error")
        return raw

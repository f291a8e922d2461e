"""Any MOABB dataset through a MOABB paradigm (optional extra ``pip install eegcrp[moabb]``).

The config names a dataset class of :mod:`moabb.datasets` (or of ``moabb.datasets.fake``,
e.g. ``FakeDataset`` for offline tests) and a paradigm class of :mod:`moabb.paradigms`
(default ``LeftRightImagery``); ``dataset_params`` and ``paradigm_params`` are passed to
their constructors. Per subject, the dataset's continuous recordings
(``dataset.get_data()``: sessions x runs of :class:`mne.io.Raw`) become the segments of a
:class:`~eegcrp.data.recording.Recording`; the paradigm decides which events are trials and
where they lie: MOABB's own event extraction (``SetRawAnnotations`` then ``RawToEvents``
with the paradigm's events and the dataset's ``interval``), and trials from
``paradigm.tmin + interval[0]`` to ``interval[1]`` (or ``paradigm.tmax + interval[0]``).

Notes
-----
* MOABB downloads missing recordings to its data folder (``MNE_DATA``, by default
  ``~/mne_data``); ``dataset.path``, when set, is used as ``MNE_DATA`` while loading.
  :meth:`MOABBLoader.files` lists no files, so the preprocessing cache key depends on the
  config (dataset, parameters, subjects) only.
* The paradigm's filters (``fmin``/``fmax``, e.g. 8-32 Hz for ``LeftRightImagery``) and
  ``resample`` are *not* applied: eegcrp's preprocessing filters the continuous recordings
  itself (``preprocessing.l_freq``/``h_freq``). The paradigm's ``channels`` are used (all EEG
  channels when None). Trials end one sample before ``tmax`` (MOABB epochs include it).
* Classes are the paradigm's events for the dataset, in the paradigm's order, coded 1..K;
  channel names are written as in the montage (``CZ`` -> ``Cz``).
* The task is inferred from the paradigm (motor imagery paradigms -> ``motor_imagery``) or
  taken from ``dataset.task``; the mains frequency is ``dataset.mains_freq`` or the
  recordings' ``line_freq``.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import mne
import pandas as pd

from .base import TASKS, BaseLoader, DataError, Recording, make_montage, make_segment
from .edf import EDF_EXTENSIONS, check_edf, fix_hint

__all__ = ["MOABBLoader"]

logger = logging.getLogger(__name__)

_INSTALL = "pip install eegcrp[moabb]"
#: Paradigm module (last part of ``moabb.paradigms.<module>``) -> eegcrp task.
_TASK_OF_MODULE = {"motor_imagery": "motor_imagery"}


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataError(
            f"moabb: cannot import {module} ({exc}); the MOABB bridge needs the optional "
            f"extra: {_INSTALL}"
        ) from exc


@contextlib.contextmanager
def _mne_data(path: Path | None) -> Iterator[None]:
    """Use ``path`` as MNE_DATA (MOABB's download folder) inside the block."""
    if path is None:
        yield
        return
    old = os.environ.get("MNE_DATA")
    os.environ["MNE_DATA"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MNE_DATA", None)
        else:
            os.environ["MNE_DATA"] = old


class MOABBLoader(BaseLoader):
    """Loader for MOABB datasets through a MOABB paradigm (see module docstring)."""

    name = "moabb"
    default_folder = "mne_data"
    mains_freq = None  # depends on the dataset: config or the recordings' line_freq
    trial_length_hint = "set dataset.paradigm_params tmin/tmax"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._dataset: Any = None
        self._paradigm: Any = None
        self._line_freq: float | None = None

    # ------------------------------------------------------------------ moabb objects
    @property
    def dataset(self) -> Any:
        """The MOABB dataset instance named by ``dataset.dataset``."""
        if self._dataset is None:
            self._dataset = self._instantiate_dataset()
        return self._dataset

    @property
    def paradigm(self) -> Any:
        """The MOABB paradigm instance named by ``dataset.paradigm``."""
        if self._paradigm is None:
            self._paradigm = self._instantiate_paradigm()
        return self._paradigm

    def _instantiate_dataset(self) -> Any:
        name = self.config.dataset
        datasets = _import("moabb.datasets")
        base = _import("moabb.datasets.base").BaseDataset
        cls = getattr(datasets, name, None)
        if cls is None:
            cls = getattr(_import("moabb.datasets.fake"), name, None)
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            known = [k for k, v in vars(datasets).items()
                     if inspect.isclass(v) and issubclass(v, base)]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"did you mean {close}? " if close else ""
            raise DataError(
                f"moabb: dataset.dataset {name!r} is not a dataset class of moabb.datasets; "
                f"{hint}see https://moabb.neurotechx.com/docs/datasets.html for the names"
            )
        try:
            return cls(**self.config.dataset_params)
        except (TypeError, ValueError, AssertionError) as exc:
            raise DataError(
                f"moabb: {name}(**dataset.dataset_params) failed ({exc}); fix "
                f"dataset.dataset_params {self.config.dataset_params}"
            ) from exc

    def _instantiate_paradigm(self) -> Any:
        name = self.config.paradigm
        paradigms = _import("moabb.paradigms")
        base = _import("moabb.paradigms.base").BaseParadigm
        cls = getattr(paradigms, name, None)
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            known = [k for k, v in vars(paradigms).items()
                     if inspect.isclass(v) and issubclass(v, base)]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"did you mean {close}? " if close else ""
            raise DataError(
                f"moabb: dataset.paradigm {name!r} is not a paradigm class of "
                f"moabb.paradigms; {hint}e.g. LeftRightImagery or MotorImagery"
            )
        try:
            paradigm = cls(**self.config.paradigm_params)
        except (TypeError, ValueError, AssertionError) as exc:
            raise DataError(
                f"moabb: {name}(**dataset.paradigm_params) failed ({exc}); fix "
                f"dataset.paradigm_params {self.config.paradigm_params}"
            ) from exc
        return paradigm

    # ------------------------------------------------------------------ task, classes
    @property
    def task(self) -> str:  # type: ignore[override]
        """``dataset.task`` or the task of the paradigm (motor imagery paradigms)."""
        if self.config.task is not None:
            return str(self.config.task)
        module = type(self.paradigm).__module__.rsplit(".", 1)[-1]
        task = _TASK_OF_MODULE.get(module)
        if task is None:
            raise DataError(
                f"moabb: cannot infer the task of paradigm {self.config.paradigm!r}; set "
                f"dataset.task to a task family ({', '.join(TASKS)}) or a label of its own "
                "(p300, ssvep ...)"
            )
        return task

    @property
    def event_id(self) -> dict[str, int]:
        """Class name -> code 1..K for the paradigm's events in this dataset."""
        if not self.paradigm.is_valid(self.dataset):
            raise DataError(
                f"moabb: paradigm {self.config.paradigm} cannot be used with dataset "
                f"{self.config.dataset} (its paradigm is {self.dataset.paradigm!r}, events "
                f"{sorted(self.dataset.event_id)}); pick a matching paradigm or set "
                "dataset.paradigm_params.events"
            )
        try:
            used = self.paradigm.used_events(self.dataset)
        except ValueError as exc:
            raise DataError(f"moabb: {exc}; check dataset.paradigm_params") from exc
        if not used:
            raise DataError(
                f"moabb: paradigm {self.config.paradigm} selects no events of dataset "
                f"{self.config.dataset} (events {sorted(self.dataset.event_id)}); set "
                "dataset.paradigm_params.events"
            )
        return {name: code for code, name in enumerate(used, start=1)}

    # ------------------------------------------------------------------ BaseLoader API
    @property
    def path(self) -> Path:
        """MOABB's data folder: ``dataset.path`` or MNE's ``MNE_DATA`` (``~/mne_data``)."""
        if self.config.path:
            return Path(self.config.path).expanduser()
        return Path(mne.get_config("MNE_DATA") or Path.home() / "mne_data").expanduser()

    def site_mains_freq(self) -> float | None:
        """``dataset.mains_freq``, else the recordings' ``line_freq`` (known after loading)."""
        if self.config.mains_freq is not None:
            return float(self.config.mains_freq)
        return self._line_freq

    def _numbers(self) -> dict[int, str]:
        return {int(num): f"S{int(num):02d}" for num in self.dataset.subject_list}

    def subject_ids(self) -> list[str]:
        return self._select(self._numbers())

    def _number(self, subject: str) -> int:
        for num, sid in self._numbers().items():
            if sid == subject:
                return num
        raise DataError(
            f"moabb: no subject {subject!r} in {self.config.dataset}; subjects: "
            f"{list(self._numbers().values())}"
        )

    def files(self, subject: str) -> list[Path]:
        """No files: MOABB manages them; the cache key is the config (see module notes)."""
        self._number(subject)
        return []

    def dataset_info(self, subjects: Sequence[str] | None = None) -> dict[str, Any]:
        """The MOABB dataset, paradigm and dataset code."""
        return {"dataset": self.config.dataset, "paradigm": self.config.paradigm,
                "code": getattr(self.dataset, "code", self.config.dataset)}

    def _interval(self) -> tuple[float, float]:
        """Trial start and end relative to the event, as the paradigm epochs them."""
        start = float(self.paradigm.tmin) + float(self.dataset.interval[0])
        if self.paradigm.tmax is None:
            end = float(self.dataset.interval[1])
        else:
            end = float(self.paradigm.tmax) + float(self.dataset.interval[0])
        return start, end

    # ------------------------------------------------------------------ conversion
    def load_recording(self, subject: str) -> Recording:
        """The subject's runs as segments, trials from the paradigm's events."""
        num = self._number(subject)
        event_id = self.event_id
        used = self.paradigm.used_events(self.dataset)
        name_of = {int(code): name for name, code in used.items()}
        montage = make_montage(self.config.montage, "moabb: dataset.montage")
        where = f"moabb dataset {self.config.dataset}"
        prep = _import("moabb.datasets.preprocessing")
        annotate = prep.SetRawAnnotations(self.dataset.event_id, interval=self.dataset.interval)
        to_events = prep.RawToEvents(event_id=used, interval=self.dataset.interval)
        logger.info("%s: paradigm %s, subject %s", where, self.config.paradigm, num)
        try:
            with _mne_data(Path(self.config.path).expanduser() if self.config.path else None):
                sessions = self.dataset.get_data(subjects=[num])[num]
        except DataError:
            raise
        except Exception as exc:  # MOABB/MNE raise many types (download, I/O, parsing)
            raise DataError(
                f"{where}: get_data failed for subject {num} ({type(exc).__name__}: {exc}); "
                f"check the network/download folder {self.path} and dataset.dataset_params"
            ) from exc
        tmin, tmax = self._interval()
        raws: list[mne.io.BaseRaw] = []
        rows: list[dict[str, Any]] = []
        for session, runs in sessions.items():
            for run, raw in runs.items():
                _check_edf_sources(raw, subject)
                raw = raw.copy().load_data(verbose="error")
                try:
                    events = to_events.transform(annotate.transform(raw))
                except ValueError as exc:
                    raise DataError(
                        f"{where}: events of subject {num}, session {session}, run {run} "
                        f"cannot be read ({exc}); check dataset.paradigm_params.events"
                    ) from exc
                raw = self._pick(raw, montage, where)
                sfreq = float(raw.info["sfreq"])
                n_times = int(round((tmax - tmin) * sfreq))
                dropped = 0
                for sample, code in zip(events[:, 0], events[:, 2], strict=True):
                    start = int(sample) - raw.first_samp + int(round(tmin * sfreq))
                    if start < 0 or start + n_times > raw.n_times:
                        dropped += 1
                        continue
                    rows.append({"segment": len(raws), "onset": start / sfreq,
                                 "label": name_of[int(code)], "session": str(session),
                                 "run": str(run)})
                if dropped:
                    logger.warning("%s: subject %s, session %s, run %s: %d trial(s) run past "
                                   "the recording; dropped", where, num, session, run, dropped)
                raws.append(raw)
        if not rows:
            raise DataError(
                f"{where}: subject {num} ({subject}) has no epochs of classes "
                f"{list(event_id)}; drop it from dataset.subjects or check "
                "dataset.paradigm_params"
            )
        line_freq = self.config.mains_freq
        if line_freq is None:
            line_freq = raws[0].info.get("line_freq")
        if line_freq is None:
            raise DataError(
                f"{where}: the recordings do not state their mains frequency (line_freq); set "
                "dataset.mains_freq to 50 or 60 (the mains of the recording site)"
            )
        self._line_freq = float(line_freq)
        segments = [make_segment(raw, montage=montage, line_freq=self._line_freq, where=where)
                    for raw in raws]
        return Recording(subject, segments, pd.DataFrame(rows), tmax - tmin, event_id,
                         source=where).validate()

    def _pick(
        self, raw: mne.io.BaseRaw, montage: mne.channels.DigMontage, where: str
    ) -> mne.io.BaseRaw:
        """The paradigm's channels (or all EEG channels), named as in the montage."""
        channels = getattr(self.paradigm, "channels", None)
        if channels:
            missing = [c for c in channels if c not in raw.ch_names]
            if missing:
                raise DataError(
                    f"{where}: channel(s) {missing} of the paradigm are not in the recording; "
                    "fix dataset.paradigm_params.channels"
                )
            raw.reorder_channels(list(channels))
        else:
            raw.pick("eeg")
        names = self._montage_names(list(raw.ch_names), montage, where)
        raw.rename_channels(dict(zip(raw.ch_names, names, strict=True)), verbose="error")
        return raw

    def _montage_names(
        self, ch_names: list[str], montage: mne.channels.DigMontage, where: str
    ) -> list[str]:
        """Spell channel names as in the montage; error on names it lacks."""
        canonical = {name.lower(): name for name in montage.ch_names}
        unknown = [name for name in ch_names if name.lower() not in canonical]
        if unknown:
            raise DataError(
                f"{where}: channel(s) {unknown} have no position in montage "
                f"{self.config.montage!r}; pick channels with dataset.paradigm_params."
                "channels or set dataset.montage to a montage that has them"
            )
        return [canonical[name.lower()] for name in ch_names]


def _check_edf_sources(raw: mne.io.BaseRaw, subject: str) -> None:
    """Refuse truncated or mis-scaled EDF/BDF files behind a MOABB recording.

    MOABB reads them with MNE, which only warns (see :mod:`eegcrp.data.edf`); recordings
    from other formats or built in memory have no such file and pass.
    """
    for name in getattr(raw, "filenames", ()) or ():
        if name is not None and str(name).lower().endswith(EDF_EXTENSIONS):
            check_edf(Path(name), fix_hint("delete the file from the MOABB data folder so "
                                           "that MOABB downloads it again", subject))

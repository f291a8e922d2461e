"""BIDS datasets through mne-bids: ``dataset.kind: bids`` (extra ``eegcrp[bids]``).

Reads every recording of one task below a BIDS root with :func:`mne_bids.read_raw_bids` and
takes from the sidecars what they state; what was taken is listed in the prepare notes:

* **Subjects**: ``participants.tsv`` (``participant_id``) when present, else the ``sub-*``
  folders; subjects without a recording of the task are left out and named.
  ``dataset.subjects`` selects labels (``01``, not ``sub-01``).
* **Recordings**: every session and run of the task and ``dataset.datatype``
  (``dataset.sessions`` / ``dataset.runs`` narrow them); each run is one continuous segment,
  filtered as a whole by :mod:`eegcrp.preprocessing` before trials are cut, as the other
  loaders do.
* **Channels**: EEG channels only (``channels.tsv`` types; the others are listed and left
  out); channels whose ``status`` is ``bad`` in any run of a subject are excluded for that
  subject; ``dataset.channels`` picks a common set in a given order.
* **Positions** from ``electrodes.tsv`` + ``coordsystem.json`` (applied by mne-bids) when
  present, else the standard montage ``dataset.montage`` by name.
* **Mains** frequency from ``PowerLineFrequency`` (``dataset.mains_freq`` overrides).
* **Trials**: the rows of ``events.tsv`` whose ``trial_type`` (``value`` where there is no
  ``trial_type``) ``dataset.classes`` maps to a class, from ``tmin`` to ``tmax`` around the
  onset; classes are coded 1..K in the order ``dataset.classes`` names them. Trials past the
  recording are dropped.

Epoched recordings (``RecordingType: epoched``; :func:`mne_bids.read_epochs_bids`) are
refused: eegcrp filters each run as one continuous signal and cuts windows afterwards, and
an epoched file has no signal around its trials to filter with.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import BaseLoader, DataError, Recording, make_segment
from .montage import missing_positions

__all__ = ["BIDSLoader", "bids_entity"]

logger = logging.getLogger(__name__)

#: Data file endings of EEG recordings mne-bids reads.
DATA_EXTENSIONS = (".vhdr", ".edf", ".bdf", ".set")


def _mne_bids() -> Any:
    try:
        import mne_bids
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            "dataset.kind: bids needs mne-bids: pip install 'eegcrp[bids]'") from exc
    return mne_bids


def bids_entity(text: str) -> str:
    """``text`` as a BIDS label: letters and digits only (``motor_imagery`` -> ``motorimagery``)."""
    label = "".join(c for c in str(text) if c.isalnum())
    if not label:
        raise DataError(f"{text!r} has no letter or digit to make a BIDS label of")
    return label


def _natural(bp: Any) -> tuple[Any, ...]:
    """Recordings in session, run order, numbers compared as numbers (run-4 before run-12)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(bp.fpath)))


def _tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _code(value: str) -> str:
    """A ``value`` column entry as text: ``1.0`` -> ``1``."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


@dataclass
class _Run:
    """One recording of a subject and what its sidecars say."""

    path: Any  # mne_bids.BIDSPath
    channels: pd.DataFrame
    sidecar: dict[str, Any]
    events: Path
    electrodes: bool

    @property
    def line_freq(self) -> float | None:
        value = self.sidecar.get("PowerLineFrequency")
        try:
            return float(value)
        except (TypeError, ValueError):  # absent or "n/a"
            return None

    @property
    def eeg(self) -> list[str]:
        c = self.channels
        return c.loc[c["type"].str.upper() == "EEG", "name"].tolist()

    @property
    def bads(self) -> list[str]:
        c = self.channels
        return c.loc[c.get("status", pd.Series("", index=c.index)).str.lower() == "bad",
                     "name"].tolist()


@dataclass
class _Subject:
    runs: list[_Run]
    channels: list[str] = field(default_factory=list)
    bads: list[str] = field(default_factory=list)


class BIDSLoader(BaseLoader):
    """Loader for a BIDS dataset (see the module docstring)."""

    name = "bids"
    default_folder = "bids"
    mains_freq = None
    trial_length_hint = "widen dataset.tmin/tmax"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._plan: dict[str, _Subject] | None = None
        self._subject_source = "the sub-* folders"

    @property
    def task(self) -> str:  # type: ignore[override]
        return str(self.config.family or self.config.task)

    @property
    def event_id(self) -> dict[str, int]:
        classes = list(dict.fromkeys(self.config.classes.values()))
        return {name: code for code, name in enumerate(classes, start=1)}

    def site_mains_freq(self) -> float | None:
        return None if self.config.mains_freq is None else float(self.config.mains_freq)

    # ------------------------------------------------------------------ the plan
    def _root(self) -> Path:
        root = self._check_folder()
        if not (root / "dataset_description.json").is_file():
            raise DataError(f"bids: {root} is not a BIDS root (no dataset_description.json); "
                            "set dataset.path to the folder that holds it")
        return root

    def _participants(self, root: Path, found: list[str]) -> tuple[list[str], str]:
        table = root / "participants.tsv"
        if not table.is_file():
            return found, "the sub-* folders"
        participants = _tsv(table)
        if "participant_id" not in participants:
            logger.warning("bids: %s has no participant_id column; subjects from the sub-* "
                           "folders", table)
            return found, "the sub-* folders"
        listed = [p.removeprefix("sub-") for p in participants["participant_id"]]
        unlisted = sorted(set(found) - set(listed))
        if unlisted:
            logger.warning("bids: subject folder(s) %s are not in participants.tsv; read "
                           "anyway", unlisted)
        return [s for s in listed if s in found] + unlisted, "participants.tsv"

    def _scan(self) -> dict[str, _Subject]:
        mb = _mne_bids()
        cfg = self.config
        root = self._root()
        tasks = mb.get_entity_vals(root, "task")
        if cfg.task not in tasks:
            raise DataError(f"bids: task {cfg.task!r} is not in {root}; tasks present: "
                            f"{tasks or 'none'}: set dataset.task to one of them")
        paths = mb.find_matching_paths(root, tasks=cfg.task, sessions=cfg.sessions,
                                       runs=cfg.runs, datatypes=cfg.datatype,
                                       suffixes=cfg.datatype, extensions=DATA_EXTENSIONS)
        by_subject: dict[str, list[Any]] = {}
        for bp in sorted(paths, key=_natural):
            by_subject.setdefault(bp.subject, []).append(bp)
        if not by_subject:
            raise DataError(f"bids: no {cfg.datatype} recording of task {cfg.task!r} in "
                            f"{root} (sessions {cfg.sessions or 'all'}, runs "
                            f"{cfg.runs or 'all'}); check dataset.datatype, sessions and runs")
        order, source = self._participants(root, list(by_subject))
        without = sorted(set(mb.get_entity_vals(root, "subject")) - set(by_subject))
        if without:
            logger.info("bids: subject(s) %s have no %s recording of task %s", without,
                        cfg.datatype, cfg.task)
        if cfg.subjects is not None:
            missing = [s for s in cfg.subjects if s not in by_subject]
            if missing:
                raise DataError(f"bids: subject(s) {missing} have no recording of task "
                                f"{cfg.task!r}; subjects with it: {order}")
            order = list(cfg.subjects)
        plan = {s: _Subject([self._run(bp) for bp in by_subject[s]]) for s in order}
        self._subject_source = source
        self._check_channels(plan)
        return plan

    def _run(self, bp: Any) -> _Run:
        where = bp.fpath
        sidecar_path = bp.copy().update(suffix=self.config.datatype, extension=".json").fpath
        sidecar = json.loads(Path(sidecar_path).read_text()) if Path(
            sidecar_path).is_file() else {}
        if str(sidecar.get("RecordingType", "continuous")).lower() == "epoched":
            raise DataError(
                f"bids: {where} is an epoched recording (RecordingType 'epoched'); eegcrp "
                "filters each run as one continuous signal and cuts windows afterwards, and an "
                "epoched file has no signal around its trials: give the continuous recording "
                "(or leave this run out with dataset.runs)")
        channels = bp.copy().update(suffix="channels", extension=".tsv").fpath
        if not Path(channels).is_file():
            raise DataError(f"bids: {where} has no channels.tsv ({channels}); mne-bids writes "
                            "one, and the BIDS validator requires it")
        events = Path(bp.copy().update(suffix="events", extension=".tsv").fpath)
        if not events.is_file():
            raise DataError(f"bids: {where} has no events file ({events.name}); eegcrp cuts "
                            "trials at its events: add the events.tsv (onset, duration, "
                            "trial_type) or leave the run out with dataset.runs")
        folder = Path(bp.fpath).parent
        electrodes = any(folder.glob(f"sub-{bp.subject}*_electrodes.tsv"))
        table = _tsv(Path(channels))
        missing = [c for c in ("name", "type") if c not in table]
        if missing:
            raise DataError(f"bids: {channels} lacks the column(s) {missing} that BIDS "
                            "requires; add them (type EEG for the EEG channels)")
        if "onset" not in _tsv(events):
            raise DataError(f"bids: {events} has no onset column; BIDS events files start "
                            "with onset and duration (in seconds)")
        return _Run(bp, table, sidecar, events, electrodes)

    def _check_channels(self, plan: dict[str, _Subject]) -> None:
        wanted = self.config.channels
        for s, subj in plan.items():
            eeg = subj.runs[0].eeg
            for run in subj.runs[1:]:
                if run.eeg != eeg:
                    raise DataError(f"bids: sub-{s}'s runs have different EEG channels "
                                    f"({run.path.basename}: {run.eeg}; first run: {eeg}); set "
                                    "dataset.channels to the channels common to all")
            subj.bads = sorted({b for run in subj.runs for b in run.bads if b in eeg})
            if wanted is None:
                subj.channels = [c for c in eeg if c not in subj.bads]
                continue
            missing = [c for c in wanted if c not in eeg]
            bad = [c for c in wanted if c in subj.bads]
            if missing or bad:
                raise DataError(
                    f"bids: sub-{s} " + ("lacks EEG channel(s) " + str(missing) if missing
                                         else "") + (" and " if missing and bad else "")
                    + ("marks " + str(bad) + " bad in channels.tsv" if bad else "")
                    + "; leave them out of dataset.channels")
            subj.channels = list(wanted)
        sets = {s: subj.channels for s, subj in plan.items()}
        first = next(iter(sets))
        differ = {s: c for s, c in sets.items() if set(c) != set(sets[first])}
        if differ:
            common = [c for c in sets[first] if all(c in v for v in sets.values())]
            described = "; ".join(
                f"sub-{s}: without {sorted(set(sets[first]) - set(c)) or '-'}, with "
                f"{sorted(set(c) - set(sets[first])) or '-'} (bad: {plan[s].bads or '-'})"
                for s, c in differ.items())
            raise DataError(
                f"bids: subjects have different EEG channels after their bad channels are "
                f"left out (compared with sub-{first}: {described}); set dataset.channels to "
                f"the {len(common)} channels they share: {common}, or repair the bad channels "
                "(interpolate, then mark them good in channels.tsv)")
        order = sets[first]
        for subj in plan.values():  # one channel order for every subject
            subj.channels = [c for c in order if c in subj.channels]

    def plan(self) -> dict[str, _Subject]:
        if self._plan is None:
            self._plan = self._scan()
        return self._plan

    # ------------------------------------------------------------------ loader API
    def subject_ids(self) -> list[str]:
        return list(self.plan())

    def files(self, subject: str) -> list[Path]:
        """Data files and every sidecar that decides the subject's windows (the cache key)."""
        subj = self._subject(subject)
        out: set[Path] = set()
        for run in subj.runs:
            fpath = Path(run.path.fpath)
            folder = fpath.parent
            stem = fpath.name[: -len(fpath.suffix)]
            out |= {p for p in folder.glob(stem.rsplit("_", 1)[0] + "_*") if p.is_file()}
            out |= {p for p in folder.glob("*_electrodes.tsv")}
            out |= {p for p in folder.glob("*_coordsystem.json")}
        return sorted(out)

    def _subject(self, subject: str) -> _Subject:
        plan = self.plan()
        if subject not in plan:
            raise DataError(f"bids: no subject {subject!r}; subjects: {list(plan)}")
        return plan[subject]

    def load_recording(self, subject: str) -> Recording:
        mb = _mne_bids()
        cfg = self.config
        subj = self._subject(subject)
        segments, rows = [], []
        for run in subj.runs:
            line_freq = self.site_mains_freq() or run.line_freq
            if line_freq is None:
                raise DataError(
                    f"bids: {run.path.basename} states no PowerLineFrequency in its "
                    f"_{cfg.datatype}.json; set dataset.mains_freq to 50 or 60 (the mains "
                    "of the recording site)")
            try:
                raw = mb.read_raw_bids(run.path, verbose="error")
                raw.load_data(verbose="error")
            except (ValueError, RuntimeError, OSError, KeyError) as exc:
                raise DataError(f"bids: mne-bids could not read {run.path.fpath} "
                                f"({type(exc).__name__}: {exc}); check the file and its "
                                "sidecars against the BIDS specification") from exc
            sfreq = float(raw.info["sfreq"])
            rows += self._trials(run, len(segments), sfreq, raw.n_times)
            raw.pick(subj.channels)
            raw.reorder_channels(subj.channels)
            placed = not missing_positions(raw.info)
            if run.electrodes and not placed:
                raise DataError(
                    f"bids: the electrodes.tsv of {run.path.basename} leaves channel(s) "
                    f"{missing_positions(raw.info)} without a usable position (check its "
                    "coordsystem.json); remove the electrodes files to use the standard "
                    f"montage {cfg.montage}, or complete them")
            segments.append(make_segment(raw, montage=None if run.electrodes else cfg.montage,
                                         line_freq=line_freq, where=str(run.path.fpath)))
        if not rows:
            values = sorted({v for run in subj.runs for v in self._values(run)[1]})
            raise DataError(
                f"bids: sub-{subject} has no events of dataset.classes "
                f"{sorted(cfg.classes)} in {self._values(subj.runs[0])[0]}; values present: "
                f"{values[:30]}: map these in dataset.classes")
        return Recording(subject, segments, pd.DataFrame(rows), cfg.tmax - cfg.tmin,
                         self.event_id, source=str(self.path)).validate()

    def _values(self, run: _Run) -> tuple[str, list[str]]:
        """The column events are matched on and its values in this run."""
        table = _tsv(run.events)
        if "trial_type" in table and (table["trial_type"] != "n/a").any():
            return "trial_type", table["trial_type"].tolist()
        if "value" in table:
            return "value", [_code(v) for v in table["value"]]
        raise DataError(f"bids: {run.events} has neither trial_type nor value; add a "
                        "trial_type column naming each event")

    def _trials(self, run: _Run, segment: int, sfreq: float, n_times: int
                ) -> list[dict[str, Any]]:
        cfg = self.config
        column, values = self._values(run)
        onsets = pd.to_numeric(_tsv(run.events)["onset"], errors="coerce").to_numpy()
        n, offset = round((cfg.tmax - cfg.tmin) * sfreq), round(cfg.tmin * sfreq)
        rows, dropped = [], 0
        for onset, value in zip(onsets, values, strict=True):
            if value not in cfg.classes or not np.isfinite(onset):
                continue
            start = round(onset * sfreq) + offset
            if start < 0 or start + n > n_times:
                dropped += 1
                continue
            rows.append({"segment": segment, "onset": start / sfreq,
                         "label": cfg.classes[value], "session": run.path.session or "",
                         "run": run.path.run or "", "file": run.path.basename,
                         column: value})
        if dropped:
            logger.warning("bids: %s: %d trial(s) run past the recording for tmin=%s, "
                           "tmax=%s; dropped", run.path.basename, dropped, cfg.tmin, cfg.tmax)
        return rows

    def dataset_info(self, subjects: Any = None) -> dict[str, Any]:
        """What was taken from the sidecars, as notes for the prepare summary."""
        plan = self.plan()
        subjects = list(subjects) if subjects is not None else list(plan)
        first = plan[subjects[0]].runs[0]
        other = first.channels.loc[first.channels["type"].str.upper() != "EEG"]
        notes = [
            f"BIDS root {self.path}, task {self.config.task}: {len(subjects)} subjects from "
            f"{self._subject_source}, "
            f"{sum(len(plan[s].runs) for s in subjects)} runs",
            "EEG channels only" + (
                "; left out: " + ", ".join(f"{t} ({', '.join(g['name'])})" for t, g in
                                           other.groupby("type"))
                if len(other) else ""),
        ]
        bads = {s: plan[s].bads for s in subjects if plan[s].bads}
        notes.append("bad channels (channels.tsv) left out: " + (
            "; ".join(f"sub-{s}: {', '.join(b)}" for s, b in bads.items()) if bads
            else "none marked"))
        placed = [s for s in subjects if all(r.electrodes for r in plan[s].runs)]
        standard = [s for s in subjects if s not in placed]
        if placed:
            notes.append(f"positions from electrodes.tsv: {len(placed)} subject(s)")
        if standard:
            notes.append(f"positions from the standard montage {self.config.montage} (no "
                         f"electrodes.tsv): {', '.join(standard)}")
        if self.config.mains_freq is not None:
            notes.append(f"mains {self.config.mains_freq:g} Hz (dataset.mains_freq)")
        else:
            mains = sorted({r.line_freq for s in subjects for r in plan[s].runs
                            if r.line_freq is not None})
            notes.append(f"mains {', '.join(f'{m:g}' for m in mains) or 'unknown'} Hz from "
                         "PowerLineFrequency")
        return {"notes": notes}

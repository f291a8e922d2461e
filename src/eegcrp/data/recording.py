"""One subject's source data: continuous segments plus where the trials lie in them.

Loaders return a :class:`Recording` per subject instead of cut trials, so that
:mod:`eegcrp.preprocessing` can filter the *continuous* signal (filters then see real
context instead of padding at every trial edge), resample it, and only then cut trials and
windows. :meth:`Recording.to_epochs` cuts the raw (unfiltered) trials for users who want
them as :class:`mne.Epochs`.

Sources that exist only as epochs (e.g. BCI IV 2b ``.mat`` files) are recordings with
``epoched=True``: every segment is one trial and there is no context around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import mne
import numpy as np
import pandas as pd

from ..errors import DataError
from .montage import missing_positions

__all__ = ["TRIAL_COLUMNS", "Recording"]

#: Columns every trials table has; any further columns are the loader's (run, session ...).
TRIAL_COLUMNS = ("segment", "onset", "label")
#: Metadata columns :meth:`Recording.to_epochs` writes itself (not loader columns).
_EPOCH_COLUMNS = ("subject", "trial", "segment", "trial_onset")


def _where(source: str, subject: str) -> str:
    return f"{source} (subject {subject})" if source else f"subject {subject}"


@dataclass
class Recording:
    """The source data of one subject: continuous segments and a table of trials.

    Parameters
    ----------
    subject : str
        Subject id.
    segments : list of mne.io.BaseRaw
        Continuous pieces (runs, files, or trials of an epoched source), preloaded, in
        volts, EEG channels only, the same channels and sampling rate in every segment,
        montage set and ``info['line_freq']`` set to the site's mains frequency.
    trials : pandas.DataFrame
        One row per trial: ``segment`` (index into ``segments``), ``onset`` (seconds from
        the segment's first sample to the trial's first sample, i.e. marker time + tmin),
        ``label`` (class name), plus the loader's columns (run, session, file ...). Rows are
        sorted by (segment, onset); the row position is the trial id.
    duration : float
        Trial length in seconds, the same for all trials (``round(duration * sfreq)``
        samples, end sample excluded).
    event_id : dict of str to int
        Class name -> event code.
    epoched : bool
        The source exists only as epochs: each segment is exactly one trial.
    prefiltered : tuple of (float | None, float | None) | None
        Pass band (low, high) in Hz the source already applied; None if unknown/none.
    source : str
        File(s) or folder the data came from, named in error messages.
    """

    subject: str
    segments: list[mne.io.BaseRaw]
    trials: pd.DataFrame
    duration: float
    event_id: dict[str, int]
    epoched: bool = False
    prefiltered: tuple[float | None, float | None] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        self.subject = str(self.subject)
        self.event_id = {str(k): int(v) for k, v in self.event_id.items()}
        self.duration = float(self.duration)
        trials = self.trials.reset_index(drop=True).copy()
        missing = [c for c in TRIAL_COLUMNS if c not in trials]
        if missing:
            raise DataError(f"{self.where}: the trials table lacks column(s) {missing}")
        trials["segment"] = trials["segment"].astype(int)
        trials["onset"] = trials["onset"].astype(float)
        trials["label"] = trials["label"].astype(str)
        self.trials = trials.sort_values(["segment", "onset"], kind="stable").reset_index(
            drop=True
        )

    # ------------------------------------------------------------------ accessors
    @property
    def where(self) -> str:
        """The source and subject, as named in messages."""
        return _where(self.source, self.subject)

    @property
    def sfreq(self) -> float:
        """Sampling frequency of the segments in Hz."""
        return float(self.segments[0].info["sfreq"])

    @property
    def ch_names(self) -> list[str]:
        """Channel names (shared by all segments)."""
        return list(self.segments[0].ch_names)

    @property
    def line_freq(self) -> float | None:
        """Mains frequency stated by the segments (``info['line_freq']``)."""
        value = self.segments[0].info.get("line_freq")
        return None if value is None else float(value)

    @property
    def n_times(self) -> int:
        """Samples per trial at :attr:`sfreq`."""
        return int(round(self.duration * self.sfreq))

    @property
    def loader_columns(self) -> list[str]:
        """The loader's own trial columns (everything but segment, onset, label)."""
        return [c for c in self.trials if c not in TRIAL_COLUMNS]

    def starts(self) -> np.ndarray:
        """First sample of every trial in its segment."""
        return np.round(self.trials["onset"].to_numpy() * self.sfreq).astype(int)

    # ------------------------------------------------------------------ checks
    def validate(self) -> Recording:
        """Check the recording, raising :class:`DataError` that names the source and the fix.

        Checks: segments present and consistent (channels, rate), EEG channels only with
        positions, finite data, known labels, every trial inside its segment, and for
        epoched sources one trial per segment covering it.
        """
        where = self.where
        if not self.segments:
            raise DataError(f"{where}: no data segments; the loader read nothing")
        first = self.segments[0]
        for k, seg in enumerate(self.segments[1:], start=1):
            if seg.ch_names != first.ch_names:
                raise DataError(
                    f"{where}: segment {k} has channels {seg.ch_names} but segment 0 has "
                    f"{first.ch_names}; pick the channels common to all (dataset.channels)"
                )
            if seg.info["sfreq"] != first.info["sfreq"]:
                raise DataError(
                    f"{where}: segment {k} is sampled at {seg.info['sfreq']} Hz but segment 0 "
                    f"at {first.info['sfreq']} Hz; resample the files to one rate"
                )
        types = first.get_channel_types()
        other = [n for n, t in zip(first.ch_names, types, strict=True) if t != "eeg"]
        if other:
            raise DataError(
                f"{where}: channel(s) {other} are not EEG; keep EEG channels only "
                "(dataset.channels)"
            )
        unplaced = missing_positions(first.info)
        if unplaced:
            raise DataError(
                f"{where}: channel(s) {unplaced} have no position; set a montage "
                "(dataset.montage) or rename them to 10-05 names (dataset.rename)"
            )
        for k, seg in enumerate(self.segments):
            data = seg.get_data()
            if not np.all(np.isfinite(data)):
                n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
                raise DataError(
                    f"{where} contains {n_bad} NaN/Inf value(s) in segment {k}; repair or "
                    "exclude the affected channels/trials (e.g. interpolate bad channels) "
                    "before loading"
                )
        if self.duration <= 0:
            raise DataError(f"{where}: trial duration {self.duration} s must be positive")
        if len(self.trials) == 0:
            raise DataError(f"{where}: no trials found; check the event/class mapping")
        unknown = sorted(set(self.trials["label"]) - set(self.event_id))
        if unknown:
            raise DataError(f"{where}: labels {unknown} are not in event_id {self.event_id}")
        seg_index = self.trials["segment"].to_numpy()
        if seg_index.min() < 0 or seg_index.max() >= len(self.segments):
            raise DataError(
                f"{where}: trials refer to segment(s) outside 0..{len(self.segments) - 1}"
            )
        lengths = np.array([seg.n_times for seg in self.segments])[seg_index]
        starts = self.starts()
        outside = np.flatnonzero((starts < 0) | (starts + self.n_times > lengths))
        if len(outside):
            k = int(outside[0])
            raise DataError(
                f"{where}: {len(outside)} trial(s) lie outside their segment (e.g. trial {k}: "
                f"{self.trials['onset'].iloc[k]:.3f} s + {self.duration:g} s in a segment of "
                f"{lengths[k] / self.sfreq:.3f} s); drop trials that run past the recording"
            )
        if self.epoched and not (
            len(self.trials) == len(self.segments)
            and np.array_equal(seg_index, np.arange(len(self.segments)))
            and np.all(starts == 0)
            and np.all(lengths == self.n_times)
        ):
            raise DataError(
                f"{where}: an epoched recording needs exactly one trial per segment, starting "
                "at 0 and covering the whole segment"
            )
        if self.prefiltered is not None:
            low, high = self.prefiltered
            if low is not None and high is not None and low >= high:
                raise DataError(f"{where}: prefiltered band {self.prefiltered} is empty")
        return self

    # ------------------------------------------------------------------ trials
    def trial_data(self) -> np.ndarray:
        """The raw trials, shape (n_trials, n_channels, n_times), in volts."""
        n = self.n_times
        out = np.empty((len(self.trials), len(self.ch_names), n))
        cache: dict[int, np.ndarray] = {}
        for i, (seg, start) in enumerate(
            zip(self.trials["segment"].to_numpy(), self.starts(), strict=True)
        ):
            if seg not in cache:
                cache[seg] = self.segments[seg].get_data()
            out[i] = cache[seg][:, start:start + n]
        return out

    def to_epochs(self) -> mne.EpochsArray:
        """Cut the raw (unfiltered) trials as :class:`mne.EpochsArray`.

        Metadata: ``subject``, ``trial`` (row position), ``segment``, ``trial_onset``
        (seconds into the segment) and the loader's columns. The info (montage, coil types,
        ``line_freq``) is the segments'.
        """
        info = self.segments[0].info.copy()
        with info._unlock():
            info["subject_info"] = {"his_id": self.subject}
        n = len(self.trials)
        meta = pd.DataFrame({
            "subject": [self.subject] * n,
            "trial": np.arange(n),
            "segment": self.trials["segment"].to_numpy(),
            "trial_onset": self.trials["onset"].to_numpy(),
        })
        for col in self.loader_columns:
            meta[col] = self.trials[col].to_numpy()
        codes = self.trials["label"].map(self.event_id).to_numpy()
        events = np.column_stack([np.arange(n) * self.n_times, np.zeros(n, int), codes])
        return mne.EpochsArray(
            self.trial_data(), info, events=events.astype(int), event_id=dict(self.event_id),
            metadata=meta, on_missing="ignore", verbose="error",
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_trials(
        cls,
        data: np.ndarray,
        info: mne.Info,
        labels: list[str],
        event_id: dict[str, int],
        subject: str,
        metadata: pd.DataFrame | None = None,
        prefiltered: tuple[float | None, float | None] | None = None,
        source: str = "",
    ) -> Recording:
        """An epoched recording from trial arrays (n_trials, n_channels, n_times) in volts.

        ``info`` (channels, rate, montage, coil types, line_freq) is shared by every trial.
        """
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 3:
            raise DataError(
                f"{_where(source, subject)}: expected trials x channels x times, got shape "
                f"{data.shape}"
            )
        if len(labels) != len(data):
            raise DataError(
                f"{_where(source, subject)}: {len(labels)} labels for {len(data)} trials"
            )
        segments = [mne.io.RawArray(x, info, verbose="error") for x in data]
        trials = pd.DataFrame({"segment": np.arange(len(data)), "onset": 0.0,
                               "label": list(labels)})
        if metadata is not None:
            extra = metadata.reset_index(drop=True)
            for col in extra:
                if col not in trials and col not in _EPOCH_COLUMNS:
                    trials[col] = extra[col].to_numpy()
        return cls(subject, segments, trials, data.shape[-1] / info["sfreq"], dict(event_id),
                   epoched=True, prefiltered=prefiltered, source=source)

    @classmethod
    def from_epochs(
        cls,
        epochs: mne.BaseEpochs,
        subject: str | None = None,
        prefiltered: tuple[float | None, float | None] | None = None,
        source: str = "",
    ) -> Recording:
        """An epoched recording from trial epochs (e.g. from :func:`make_epochs`).

        Metadata columns other than ``subject``, ``trial``, ``segment`` and ``trial_onset``
        become loader columns.
        """
        if subject is None:
            meta = epochs.metadata
            subject = str(meta["subject"].iloc[0]) if meta is not None and "subject" in meta \
                else "?"
        code_to_name = {v: k for k, v in epochs.event_id.items()}
        labels = [code_to_name[int(c)] for c in epochs.events[:, 2]]
        info = epochs.info.copy()
        return cls.from_trials(epochs.get_data(copy=False), info, labels,
                               dict(epochs.event_id), subject, epochs.metadata,
                               prefiltered, source)

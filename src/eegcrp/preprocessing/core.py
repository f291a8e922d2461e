"""The :class:`Preprocessor`: one subject's recording -> filtered continuous data + windows.

Per subject, in this order (defaults from the thesis):

1. band-pass (zero-phase FIR, :func:`mne.filter.filter_data`), default 1-60 Hz, and a notch
   at the mains frequency and its harmonics up to the low-pass edge
   (:func:`mne.filter.notch_filter`), each run on every *continuous* segment of the
   recording, so that no trial edge sees filter padding; then the amplitude check
   (:mod:`.amplitude`: channels of implausible amplitude are refused or flagged);
2. resampling of each segment to ``sfreq`` (polyphase, :func:`mne.filter.resample`);
3. common-average reference (optional, default on), per sample over the EEG channels (it
   commutes with the linear filters and resampling, so its place makes no difference);
4. cutting the trials (``round(onset * sfreq)``, ``round(duration * sfreq)`` samples) and
   windows of ``window`` seconds every ``step * window`` seconds inside each trial (a window
   never crosses a trial boundary);
5. z-scoring of each window over channels x time (optional, default off).

Sources that exist only as epochs (``Recording.epoched``) have no context beyond each
trial. For them a filter step is skipped when the source's own band
(``Recording.prefiltered``) already makes it pointless: a high-pass at or below the
source's lower edge, a low-pass at or above its upper edge, notch frequencies above its
upper edge. Those steps would change nothing in the pass band but, on epochs of a few
seconds, a 1 Hz high-pass FIR (3.3 s long) distorts every epoch. The remaining steps run on
each whole epoch. Every such decision is stated in :attr:`Preprocessed.notes`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import mne
import numpy as np
import pandas as pd

from ..config import PreprocessingConfig
from ..data.base import DataError, Recording, is_bipolar
from .amplitude import check_amplitudes, robust_amplitude

logger = logging.getLogger(__name__)

__all__ = ["Preprocessed", "Preprocessor", "TrialsTooShortError"]

#: Annotation description prefix of the trials in the continuous data: ``trial/<class>``.
TRIAL_PREFIX = "trial/"


class TrialsTooShortError(DataError):
    """A subject's trials are shorter than one window; ``duration`` is their length in s."""

    def __init__(self, message: str, duration: float) -> None:
        super().__init__(message)
        self.duration = duration


@dataclass
class Preprocessed:
    """One subject after preprocessing.

    Attributes
    ----------
    windows : mne.EpochsArray
        Model windows at the target rate (z-scored when configured); metadata ``subject``,
        ``trial``, ``window``, ``onset`` (s from the trial start to the window's first
        sample), ``segment``, ``trial_onset`` (s from the segment start) and the loader's
        columns.
    continuous : mne.io.RawArray
        The filtered, resampled (and CAR-referenced) segments concatenated, in volts, not
        z-scored; ``BAD boundary``/``EDGE boundary`` annotations at the joins (as
        :func:`mne.concatenate_raws` writes them) and one ``trial/<class>`` annotation per
        trial in trial order (onset = trial start, duration = trial length). Without
        z-scoring every window is an exact cut of it.
    notes : list of str
        Human-readable statements of special treatments (epoched source, skipped notch).
    amplitudes : dict of str to float
        Robust peak-to-peak amplitude of every channel in µV, the largest over the
        recording's segments (see :mod:`eegcrp.preprocessing.amplitude`).
    implausible : dict of str to float
        The channels outside the configured amplitude limits (kept with
        ``amplitude_action: warn``) -> their amplitude in µV.
    smallest_amplitudes : dict of str to float
        The smallest robust amplitude over the segments (what the lower limit checks).
    """

    windows: mne.EpochsArray
    continuous: mne.io.RawArray
    notes: list[str] = field(default_factory=list)
    amplitudes: dict[str, float] = field(default_factory=dict)
    implausible: dict[str, float] = field(default_factory=dict)
    smallest_amplitudes: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def mne_warnings_to_log() -> Iterator[None]:
    """Route MNE's RuntimeWarnings (e.g. a filter longer than an epoch) to the logger."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        yield
    for w in caught:
        logger.warning("%s", w.message)


def _hz(values: list[float]) -> str:
    return "/".join(f"{v:g}" for v in values)


@dataclass
class _Plan:
    l_freq: float | None
    h_freq: float | None
    notch: list[float]
    notes: list[str]


class Preprocessor:
    """Turn one subject's :class:`~eegcrp.data.recording.Recording` into windows.

    Parameters
    ----------
    config : PreprocessingConfig
        Filter, resampling, window and referencing settings.
    mains_freq : float | None
        Mains frequency used when ``config.notch == 'auto'``; None = the recording's
        ``info['line_freq']`` (which loaders set to the site's mains frequency).
    """

    def __init__(self, config: PreprocessingConfig, mains_freq: float | None = None) -> None:
        self.config = config
        self.mains_freq = mains_freq

    # ------------------------------------------------------------------ pieces
    def notch_freqs(self, sfreq: float, mains: float | None = None) -> list[float]:
        """Notch frequencies for data at ``sfreq`` (mains and harmonics up to the low-pass)."""
        cfg = self.config
        if cfg.notch == "none":
            return []
        if cfg.notch == "auto":
            base = self.mains_freq if self.mains_freq is not None else mains
        else:
            base = float(cfg.notch)
        if base is None:
            return []
        top = sfreq / 2 - 1.0
        if cfg.h_freq is not None:
            top = min(top, cfg.h_freq * 1.25)
        return [float(k * base) for k in range(1, int(top // base) + 1)]

    def _check_rate(self, sfreq: float, where: str) -> None:
        h = self.config.h_freq
        if h is not None and sfreq < 2 * h:
            raise DataError(
                f"{where} is sampled at {sfreq} Hz, below twice the band-pass upper edge "
                f"({h} Hz); set preprocessing.h_freq to at most {sfreq / 2:g} Hz"
            )

    def filter(
        self, data: np.ndarray, sfreq: float, mains: float | None = None
    ) -> np.ndarray:
        """Band-pass and notch ``data`` (..., n_times) sampled at ``sfreq`` (all steps)."""
        cfg = self.config
        h = cfg.h_freq if cfg.h_freq is not None and cfg.h_freq < sfreq / 2 else None
        return self._filter(data, sfreq, cfg.l_freq, h, self.notch_freqs(sfreq, mains))

    @staticmethod
    def _filter(data: np.ndarray, sfreq: float, l_freq: float | None, h_freq: float | None,
                notch: list[float]) -> np.ndarray:
        with mne_warnings_to_log():
            if l_freq is not None or h_freq is not None:
                data = mne.filter.filter_data(data, sfreq, l_freq, h_freq, verbose="error")
            if notch:
                data = mne.filter.notch_filter(data, sfreq, notch, verbose="error")
        return data

    def ratio(self, sfreq: float) -> tuple[int, int]:
        """Resampling factors (up, down) from ``sfreq`` to ``config.sfreq``."""
        frac = Fraction(self.config.sfreq / sfreq).limit_denominator(1000)
        return frac.numerator, frac.denominator

    def resample(self, data: np.ndarray, sfreq: float) -> np.ndarray:
        """Resample the last axis from ``sfreq`` to ``config.sfreq`` (polyphase).

        MNE derives the polyphase factors from the lengths, so data are reflected at the end
        to a multiple of ``down`` (fixed factors and sample grid for any length) and the
        output cut to ``ceil(n * up / down)`` samples; sample ``k`` lies at ``k / sfreq``.
        """
        if np.isclose(sfreq, self.config.sfreq):
            return data
        up, down = self.ratio(sfreq)
        n = data.shape[-1]
        pad = (-n) % down
        if pad:
            width = [(0, 0)] * (data.ndim - 1) + [(0, pad)]
            data = np.pad(data, width, mode="reflect" if pad < n else "edge")
        with mne_warnings_to_log():
            out = mne.filter.resample(data, up=float(up), down=float(down), method="polyphase",
                                      verbose="error")
        return out[..., : -(-n * up // down)]

    def window_starts(self, n_times: int) -> np.ndarray:
        """Start samples of the windows that fit entirely inside a trial of ``n_times``
        (those starting before ``min_window_onset`` left out)."""
        win = self.window_samples
        step = max(1, int(round(self.config.step * win)))
        first = int(round(self.config.min_window_onset * self.config.sfreq))
        if n_times < win + first:
            return np.empty(0, dtype=int)
        return np.arange(first, n_times - win + 1, step)

    @property
    def window_samples(self) -> int:
        """Window length in samples at the target rate."""
        return int(round(self.config.window * self.config.sfreq))

    # ------------------------------------------------------------------ plan
    def _plan(self, rec: Recording) -> _Plan:
        """The filter steps for this recording, and notes on what is skipped and why."""
        cfg = self.config
        sfreq = rec.sfreq
        l_freq = cfg.l_freq
        h_freq = cfg.h_freq if cfg.h_freq is not None and cfg.h_freq < sfreq / 2 else None
        mains = self.mains_freq if self.mains_freq is not None else rec.line_freq
        notch = self.notch_freqs(sfreq, rec.line_freq)
        notes: list[str] = []
        if cfg.notch == "auto" and mains is None:
            notes.append("the recordings state no mains frequency: no notch filter")
        if not rec.epoched:
            return _Plan(l_freq, h_freq, notch, notes)
        low, high = rec.prefiltered or (None, None)
        skipped = []
        if l_freq is not None and low is not None and l_freq <= low:
            skipped.append(f"the {l_freq:g} Hz high-pass")
            l_freq = None
        if h_freq is not None and high is not None and h_freq >= high:
            skipped.append(f"the {h_freq:g} Hz low-pass")
            h_freq = None
        if notch and high is not None and any(f > high for f in notch):
            skipped.append(f"the {_hz([f for f in notch if f > high])} Hz notch")
            notch = [f for f in notch if f <= high]
        text = f"the source exists only as {rec.duration:g}-s epochs"
        if rec.prefiltered is not None:
            band = f"{low:g}-{high:g} Hz" if low is not None and high is not None else \
                (f"above {low:g} Hz" if low is not None else f"below {high:g} Hz")
            text += f", already filtered to {band} by its provider"
        if skipped:
            listed = skipped[0] if len(skipped) == 1 else \
                f"{', '.join(skipped[:-1])} and {skipped[-1]}"
            verb = "is" if len(skipped) == 1 else "are"
            text += (f": {listed} {verb} skipped, since outside that band they change nothing "
                     "and on epochs without context they would only distort the epoch edges")
        applied = []
        if l_freq is not None or h_freq is not None:
            length = len(mne.filter.create_filter(None, sfreq, l_freq, h_freq,
                                                  verbose="error")) / sfreq
            band = f"{l_freq:g}-{h_freq:g} Hz" if l_freq is not None and h_freq is not None \
                else (f"{l_freq:g} Hz high-pass" if l_freq is not None
                      else f"{h_freq:g} Hz low-pass")
            applied.append(f"the {band} filter ({length:.2f}-s FIR)")
        if notch:
            applied.append(f"the {_hz(notch)} Hz notch")
        if applied:
            verb = "runs" if len(applied) == 1 else "run"
            text += (f"; {' and '.join(applied)} {verb} on each whole epoch, so the first and "
                     "last samples of every epoch carry edge transients")
        else:
            text += "; the epochs are only resampled"
        notes.append(text)
        return _Plan(l_freq, h_freq, notch, notes)

    @staticmethod
    def _without(rec: Recording, names: list[str]) -> Recording:
        """``rec`` without channels ``names`` (each must be there: a typo must not pass)."""
        missing = sorted(set(names) - set(rec.ch_names))
        if missing:
            raise DataError(f"{rec.where}: preprocessing.drop_channels names {missing}, "
                            f"which this recording lacks; its channels: {rec.ch_names}")
        if len(set(names)) >= len(rec.ch_names):
            raise DataError(f"{rec.where}: preprocessing.drop_channels removes every channel")
        segments = [seg.copy().drop_channels(list(names)) for seg in rec.segments]
        return dataclasses.replace(rec, segments=segments)

    # ------------------------------------------------------------------ main
    def process(self, rec: Recording) -> Preprocessed:
        """Preprocess one subject's recording (see the module docstring).

        Raises
        ------
        DataError
            CAR on bipolar channels, a rate below twice the low-pass edge, NaN/Inf, channels
            of implausible amplitude with ``amplitude_action: refuse``.
        TrialsTooShortError
            If the trials are shorter than one window.
        """
        cfg = self.config
        where = rec.where
        if cfg.drop_channels:
            rec = self._without(rec, cfg.drop_channels)
        if cfg.car and is_bipolar(rec.segments[0].info):
            raise DataError(
                f"{where}: channels {rec.ch_names} are bipolar derivations; their average is "
                "no reference (it mixes differences of neighbouring electrodes and removes "
                "signal they share), so common-average referencing cannot be applied: set "
                "preprocessing.car to false (--set preprocessing.car=false)"
            )
        sfreq = rec.sfreq
        self._check_rate(sfreq, where)
        n_trial = int(round(rec.duration * cfg.sfreq))
        if not len(self.window_starts(n_trial)) and cfg.min_window_onset > 0:
            raise TrialsTooShortError(
                f"{where}: trials are {rec.duration:g} s long, too short for a "
                f"{cfg.window:g}-s window starting preprocessing.min_window_onset "
                f"({cfg.min_window_onset:g} s) after the trial start; lower it or "
                "preprocessing.window", rec.duration)
        if n_trial < self.window_samples:
            raise TrialsTooShortError(
                f"{where}: trials are {rec.duration:g} s long ({n_trial} samples at "
                f"{cfg.sfreq:g} Hz), shorter than preprocessing.window ({cfg.window:g} s)",
                rec.duration,
            )
        plan = self._plan(rec)
        if rec.epoched:  # one array: each trial filtered on its own, in one call
            data = self._filter(np.stack([seg.get_data() for seg in rec.segments]), sfreq,
                                plan.l_freq, plan.h_freq, plan.notch)
            # all trials form one segment for the amplitude (percentiles of 4-s trials
            # would be little more than their extremes)
            amplitude = robust_amplitude([np.concatenate(list(data), axis=-1)])
            smallest = amplitude
            segments = list(self._finish(data, sfreq, where))
        else:
            segments, amplitudes = [], []
            for seg in rec.segments:  # one filtered full-rate segment in memory at a time
                data = self._filter(seg.get_data(), sfreq, plan.l_freq, plan.h_freq,
                                    plan.notch)
                amplitudes.append(robust_amplitude([data]))
                segments.append(self._finish(data, sfreq, where))
            # the upper limit sees each channel's worst recording, the lower one its
            # flattest: one good run must not hide a channel dead in another
            amplitude, smallest = np.max(amplitudes, axis=0), np.min(amplitudes, axis=0)
        # measured after the band-pass, before the average spreads a bad channel (see
        # eegcrp.preprocessing.amplitude for why there)
        implausible = check_amplitudes(rec.ch_names, amplitude, cfg, where, rec.subject,
                                       smallest)

        up, down = self.ratio(sfreq) if not np.isclose(sfreq, cfg.sfreq) else (1, 1)
        src_starts = rec.starts()
        starts = np.round(src_starts * up / down).astype(int)
        seg_index = rec.trials["segment"].to_numpy()
        lengths = np.array([s.shape[-1] for s in segments])[seg_index]
        # rounding onset and length separately can overshoot the segment end by a sample
        starts = np.minimum(starts, lengths - n_trial)
        win_starts = self.window_starts(n_trial)
        win = self.window_samples
        n_win = len(win_starts)
        windows = np.empty((len(starts) * n_win, len(rec.ch_names), win))
        for i, (seg, start) in enumerate(zip(seg_index, starts, strict=True)):
            for j, ws in enumerate(win_starts):
                windows[i * n_win + j] = segments[seg][:, start + ws:start + ws + win]
        if cfg.zscore:
            std = windows.std(axis=(1, 2), keepdims=True)
            if np.any(std == 0):
                raise DataError(f"{where}: a window is flat (zero variance); remove dead trials")
            windows = (windows - windows.mean(axis=(1, 2), keepdims=True)) / std
        # Round to float32 now so fresh results equal what the (float32) cache returns.
        windows = windows.astype(np.float32).astype(np.float64)

        info = self._info(rec, plan)
        meta = pd.DataFrame({
            "subject": rec.subject,
            "trial": np.repeat(np.arange(len(starts)), n_win),
            "window": np.tile(np.arange(n_win), len(starts)),
            "onset": np.tile(win_starts / cfg.sfreq, len(starts)),
            "segment": np.repeat(seg_index, n_win),
            "trial_onset": np.repeat(starts / cfg.sfreq, n_win),
        })
        for col in rec.loader_columns:
            meta[col] = np.repeat(rec.trials[col].to_numpy(), n_win)
        codes = np.repeat(rec.trials["label"].map(rec.event_id).to_numpy(), n_win)
        events = np.column_stack([np.arange(len(codes)) * win, np.zeros(len(codes), int), codes])
        out = mne.EpochsArray(windows, info, events=events.astype(int),
                              event_id=dict(rec.event_id), metadata=meta,
                              on_missing="ignore", verbose="error")
        continuous = self._continuous(rec, segments, seg_index, starts, n_trial, info)
        amplitudes = {name: float(a) * 1e6 for name, a in zip(rec.ch_names, amplitude,
                                                               strict=True)}
        least = {name: float(a) * 1e6 for name, a in zip(rec.ch_names, smallest, strict=True)}
        return Preprocessed(out, continuous, plan.notes, amplitudes, implausible, least)

    def transform(self, data: Recording | mne.BaseEpochs, subject: str | None = None
                  ) -> mne.EpochsArray:
        """Windows of a recording, or of trial epochs (treated as an epoched source)."""
        if isinstance(data, mne.BaseEpochs):
            data = Recording.from_epochs(data, subject)
        return self.process(data.validate()).windows

    # ------------------------------------------------------------------ helpers
    def _finish(self, data: np.ndarray, sfreq: float, where: str) -> np.ndarray:
        """Resample and re-reference one filtered segment (or a stack of epochs)."""
        data = self.resample(data, sfreq)
        if self.config.car:
            data = data - data.mean(axis=-2, keepdims=True)
        if not np.all(np.isfinite(data)):
            raise DataError(f"{where}: filtering produced NaN/Inf; check the input data")
        return data

    def _info(self, rec: Recording, plan: _Plan) -> mne.Info:
        """The segments' info (montage, coil types, line_freq) at the target rate and band."""
        cfg = self.config
        info = rec.segments[0].info.copy()
        low, high = rec.prefiltered or (None, None)
        highpass = max(float(info["highpass"] or 0.0), plan.l_freq or 0.0, low or 0.0)
        lowpass = min(float(info["lowpass"] or np.inf), plan.h_freq or np.inf,
                      high or np.inf, cfg.sfreq / 2)
        with info._unlock():
            info["sfreq"] = float(cfg.sfreq)
            info["highpass"] = highpass
            info["lowpass"] = lowpass
            info["subject_info"] = {"his_id": rec.subject}
            if cfg.car:
                # Record the reference as MNE's set_eeg_reference would (ICLabel reads it).
                info["custom_ref_applied"] = mne.io.constants.FIFF.FIFFV_MNE_CUSTOM_REF_ON
        return info

    @staticmethod
    def _continuous(rec: Recording, segments: list[np.ndarray], seg_index: np.ndarray,
                    starts: np.ndarray, n_trial: int, info: mne.Info) -> mne.io.RawArray:
        """Segments concatenated with boundary and trial annotations (see Preprocessed)."""
        sfreq = info["sfreq"]
        offsets = np.concatenate([[0], np.cumsum([s.shape[-1] for s in segments])])
        raw = mne.io.RawArray(np.concatenate(segments, axis=-1), info, verbose="error")
        joins = offsets[1:-1] / sfreq
        onsets = np.concatenate([np.repeat(joins, 2), (offsets[seg_index] + starts) / sfreq])
        descriptions = ["BAD boundary", "EDGE boundary"] * len(joins) + [
            f"{TRIAL_PREFIX}{label}" for label in rec.trials["label"]]
        durations = np.concatenate([np.zeros(2 * len(joins)),
                                    np.full(len(starts), n_trial / sfreq)])
        raw.set_annotations(mne.Annotations(onsets, durations, descriptions))
        return raw

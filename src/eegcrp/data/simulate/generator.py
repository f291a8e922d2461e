"""Signal generation of the simulator: one continuous recording per subject.

Signal model (per subject and channel; amplitudes in µV, returned in volts)::

    x(t) = background + rhythms (task-modulated) + artefacts + line noise + sensor noise

The recording holds the subject's trials back to back, with ``margin`` seconds of the same
signal before the first and after the last, so filters run on real context rather than on
padding. Every component is synthesised over the whole recording (not per trial):

* **Background.** Spatially correlated 1/f noise: one 1/f^beta series per channel
  (synthesised in the frequency domain, flat below 1 Hz) mixed with the Cholesky factor of
  the covariance exp(-d/lambda) of electrode distances d.
* **Rhythms.** Narrow-band sources (Gaussian spectral peak, waxing and waning). Within the
  effect window of every trial of the effect's class (cosine ramps of up to 0.25 s) the
  amplitude is multiplied by ``sqrt(ratio)``, i.e. the band power by ``ratio``.
* **Artefacts.** Poisson events in continuous time: the rate of a trial is its class's
  rate, margins use the base rate. An event belongs to the trial in which it starts; the
  per-trial counts are the metadata columns ``blinks``, ``saccades``, ``muscle_bursts``.
* **Line and sensor noise.** One continuous mains sinusoid (channel-dependent amplitude
  and phase) and white sensor noise.

Each component draws from its own random stream, so switching one off leaves the others
unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.fft import next_fast_len

from ...config import SIMULATED_CLASSES, SimulatedConfig
from .forward import SOURCE_INDEX, SOURCES, electrode_units
from .model import BACKGROUND_UV, BANDS, EFFECTS, RHYTHM_INDEX, RHYTHMS, SubjectParams, rates

__all__ = ["Layout", "SimulatedSubject", "effect_window", "simulate_recording",
           "spectral_noise"]

_RAMP_S = 0.25


def spectral_noise(
    rng: np.random.Generator, shape: tuple[int, ...], n_times: int, gain: np.ndarray
) -> np.ndarray:
    """Gaussian noise with amplitude spectrum ``gain`` (broadcast on the last axis), scaled
    to unit expected variance; synthesised in the frequency domain (circular)."""
    n_freq = n_times // 2 + 1
    gain = np.broadcast_to(np.asarray(gain, dtype=np.float64), (*gain.shape[:-1], n_freq))
    # expected variance of irfft of a spectrum with N(0, g^2) real and imaginary parts
    weights = np.full(n_freq, 4.0)
    weights[0] = 1.0
    if n_times % 2 == 0:
        weights[-1] = 1.0
    var = np.sum(weights * gain**2, axis=-1, keepdims=True) / n_times**2
    spec = rng.standard_normal((*shape, 2 * n_freq)).view(np.complex128)
    spec *= gain / np.sqrt(np.where(var > 0, var, 1.0))
    return np.fft.irfft(spec, n=n_times, axis=-1)


def effect_window(times: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 outside [start, end], 1 inside, raised-cosine ramps of up to 0.25 s."""
    ramp = min(_RAMP_S, (end - start) / 4)
    w = np.zeros_like(times)
    inside = (times >= start) & (times <= end)
    w[inside] = 1.0
    if ramp > 0:
        up = (times >= start) & (times < start + ramp)
        w[up] = 0.5 - 0.5 * np.cos(np.pi * (times[up] - start) / ramp)
        down = (times > end - ramp) & (times <= end)
        w[down] = 0.5 - 0.5 * np.cos(np.pi * (end - times[down]) / ramp)
    return w


@dataclass(frozen=True)
class Layout:
    """Where the trials lie in a subject's continuous recording (all in samples)."""

    sfreq: float
    n_trials: int
    trial: int  # samples per trial
    margin: int  # samples before the first and after the last trial

    @classmethod
    def of(cls, config: SimulatedConfig) -> Layout:
        sfreq = float(config.sfreq)
        return cls(sfreq, config.n_trials, int(round(config.trial_duration * sfreq)),
                   int(round(config.margin * sfreq)))

    @property
    def n_times(self) -> int:
        """Samples in the whole recording."""
        return 2 * self.margin + self.n_trials * self.trial

    @property
    def starts(self) -> np.ndarray:
        """First sample of every trial."""
        return self.margin + self.trial * np.arange(self.n_trials)

    def blocks(self) -> list[tuple[int, int, int | None]]:
        """(start, length, trial index or None for a margin) in time order."""
        out: list[tuple[int, int, int | None]] = [(0, self.margin, None)]
        out += [(int(s), self.trial, k) for k, s in enumerate(self.starts)]
        out.append((self.margin + self.n_trials * self.trial, self.margin, None))
        return [b for b in out if b[1] > 0]


@dataclass
class SimulatedSubject:
    """One subject's continuous recording: data, trial starts, labels and counts."""

    data: np.ndarray  # (n_channels, n_times) in volts
    starts: np.ndarray  # first sample of every trial
    labels: list[str]
    counts: pd.DataFrame  # per-trial artefact counts


def _events(
    rng: np.random.Generator, layout: Layout, rate_of: dict[str, float], base: float,
    labels: list[str],
) -> list[tuple[float, int | None]]:
    """Poisson events as (onset in s, trial index or None), drawn block by block."""
    out: list[tuple[float, int | None]] = []
    for start, length, trial in layout.blocks():
        rate = base if trial is None else rate_of[labels[trial]]
        seconds = length / layout.sfreq
        for _ in range(rng.poisson(rate * seconds)):
            out.append((start / layout.sfreq + rng.uniform(0, seconds), trial))
    return out


def _span(onset: float, before: float, after: float, sfreq: float, n: int) -> slice:
    """Samples from ``onset - before`` to ``onset + after`` seconds, inside the recording."""
    return slice(max(0, int(math.floor((onset - before) * sfreq))),
                 min(n, int(math.ceil((onset + after) * sfreq)) + 1))


def simulate_recording(
    config: SimulatedConfig, params: SubjectParams, streams: list[np.random.Generator],
    mains: float | None,
) -> SimulatedSubject:
    """Simulate one subject's continuous recording (see the module docstring)."""
    rng_labels, rng_bg, rng_rhythm, rng_blink, rng_saccade, rng_muscle, rng_line, rng_sensor = (
        streams
    )
    classes = SIMULATED_CLASSES[config.paradigm]
    layout = Layout.of(config)
    sfreq, n = layout.sfreq, layout.n_times
    n_fft = next_fast_len(n, real=True)  # synthesise on a fast length, keep the first n
    n_ch = params.patterns.shape[0]
    times = np.arange(n) / sfreq
    freqs = np.fft.rfftfreq(n_fft, 1 / sfreq)
    truth = params.truth

    labels = [classes[i % 2] for i in range(layout.n_trials)]
    labels = [labels[i] for i in rng_labels.permutation(layout.n_trials)]

    # ---- background: spatially correlated 1/f noise
    unit = electrode_units(params.channels)
    dist = np.linalg.norm(unit[:, None, :] - unit[None, :, :], axis=-1)
    mixing = np.linalg.cholesky(np.exp(-dist / params.corr_length) + 1e-9 * np.eye(n_ch))
    pink_gain = np.zeros_like(freqs)
    pink_gain[1:] = np.maximum(freqs[1:], 1.0) ** (-truth.aperiodic_exponent / 2)
    pink = spectral_noise(rng_bg, (n_ch,), n_fft, pink_gain)[:, :n]
    data = (BACKGROUND_UV * truth.gain * mixing) @ pink
    del pink

    # ---- rhythms and their task modulation in every trial's effect window
    gains = np.empty((len(RHYTHMS), len(freqs)))
    for i, rhythm in enumerate(RHYTHMS):
        width = BANDS[rhythm.rhythm][1]
        gains[i] = np.exp(-0.5 * ((freqs - truth.peak_freqs[rhythm.rhythm]) / width) ** 2)
    rhythms = spectral_noise(rng_rhythm, (len(RHYTHMS),), n_fft, gains)[:, :n]
    rhythms *= params.rhythm_amp[:, None]
    window = effect_window(np.arange(layout.trial) / sfreq, *config.effect_window)
    for effect in EFFECTS[config.paradigm]:
        ratio = (1.0 + truth.effect_size) ** effect.direction
        envelope = np.ones(n)
        for start, label in zip(layout.starts, labels, strict=True):
            if label == effect.cls:
                envelope[start:start + layout.trial] += (math.sqrt(ratio) - 1.0) * window
        rhythms[RHYTHM_INDEX[effect.rhythm]] *= envelope
    sources = np.zeros((len(SOURCES), n))
    for i, rhythm in enumerate(RHYTHMS):
        sources[SOURCE_INDEX[rhythm.source]] += rhythms[i]
    del rhythms

    # ---- artefacts: events in continuous time, each added where it is non-negligible
    counts = {key: np.zeros(layout.n_trials, dtype=int)
              for key in ("blinks", "saccades", "muscle_bursts")}
    base = {"blink": config.blink_rate, "saccade": config.saccade_rate,
            "muscle": config.muscle_rate}

    blink = sources[SOURCE_INDEX["blink"]]
    for onset, trial in _events(rng_blink, layout, rates(config, "blink", classes),
                                base["blink"], labels):
        width = rng_blink.uniform(0.05, 0.09)
        amp = params.artifact_amp["blink"] * np.exp(0.2 * rng_blink.standard_normal())
        span = _span(onset, 8 * width, 8 * width, sfreq, n)  # exp(-32): nothing beyond
        blink[span] += amp * np.exp(-0.5 * ((times[span] - onset) / width) ** 2)
        if trial is not None:
            counts["blinks"][trial] += 1

    saccade = sources[SOURCE_INDEX["saccade"]]
    edge = 0.02  # s, smooth the step a little
    for onset, trial in _events(rng_saccade, layout, rates(config, "saccade", classes),
                                base["saccade"], labels):
        length = rng_saccade.uniform(0.3, 1.2)
        amp = params.artifact_amp["saccade"] * np.exp(0.2 * rng_saccade.standard_normal())
        sign = 1.0 if rng_saccade.random() < 0.5 else -1.0
        span = _span(onset, 25 * edge, length + 25 * edge, sfreq, n)  # tanh(25) == 1
        t = times[span]
        saccade[span] += sign * amp * 0.5 * (np.tanh((t - onset) / edge)
                                             - np.tanh((t - onset - length) / edge))
        if trial is not None:
            counts["saccades"][trial] += 1

    bursts = []
    for onset, trial in _events(rng_muscle, layout, rates(config, "muscle", classes),
                                base["muscle"], labels):
        length = rng_muscle.uniform(0.3, 1.2)
        amp = params.artifact_amp["muscle"] * np.exp(0.25 * rng_muscle.standard_normal())
        bursts.append((onset, length, amp, int(rng_muscle.integers(3))))  # 0 L, 1 R, 2 both
        if trial is not None:
            counts["muscle_bursts"][trial] += 1
    if bursts:
        hf_gain = np.clip((freqs - 15.0) / 10.0, 0.0, 1.0)
        hf = spectral_noise(rng_muscle, (2,), n_fft, hf_gain)[:, :n]
        sides = (sources[SOURCE_INDEX["muscle_left"]], sources[SOURCE_INDEX["muscle_right"]])
        for onset, length, amp, side in bursts:
            span = _span(onset, 0.0, length, sfreq, n)
            phase = np.clip((times[span] - onset) / length, 0.0, 1.0)
            # sin^2 envelope scaled so that ``amp`` is the RMS over the burst
            envelope = amp * math.sqrt(8 / 3) * np.sin(np.pi * phase) ** 2
            for k in (0, 1):
                if side in (k, 2):
                    sides[k][span] += envelope * hf[k, span]
        del hf

    data += params.patterns @ sources
    del sources

    # ---- mains and sensor noise
    if mains is not None and config.line_noise_uv > 0:
        phase = rng_line.uniform(0, 2 * np.pi) + params.line_phase
        arg = 2 * np.pi * mains * times
        # a sin(wt + phi) = a cos(phi) sin(wt) + a sin(phi) cos(wt)
        data += np.outer(params.line_amp * np.cos(phase), np.sin(arg))
        data += np.outer(params.line_amp * np.sin(phase), np.cos(arg))
    if config.sensor_noise_uv > 0:
        data += config.sensor_noise_uv * rng_sensor.standard_normal(data.shape)

    data *= 1e-6  # µV -> V
    return SimulatedSubject(data, layout.starts, labels, pd.DataFrame(counts))

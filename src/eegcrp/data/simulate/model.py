"""Model tables of the simulator (rhythms, effects, artefacts) and per-subject parameters.

Each subject draws gain, 1/f exponent, spatial correlation length, peak frequencies
(alpha/mu 8.5-12 Hz), effect strength, source position and orientation jitter and artefact
amplitudes (all scaled by ``variability``); a fraction ``weak_fraction`` of subjects has a
weak or no effect (0-25 % strength).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...config import SimulatedConfig
from .forward import SOURCES, patterns, source_geometry
from .truth import SubjectTruth

__all__ = [
    "ARTIFACTS",
    "ARTIFACT_DESCRIPTION",
    "BACKGROUND_UV",
    "BANDS",
    "DESCRIPTIONS",
    "EFFECTS",
    "RHYTHMS",
    "RHYTHM_INDEX",
    "Effect",
    "Rhythm",
    "SubjectParams",
    "rates",
    "seed_of",
    "subject_params",
    "weak_subjects",
]

#: RMS of the 1/f background per channel in µV (before the subject's gain).
BACKGROUND_UV = 10.0


@dataclass(frozen=True)
class Rhythm:
    """A narrow-band rhythm of one source."""

    name: str
    source: str
    rhythm: str  # mu | beta | alpha | theta
    amplitude: float  # RMS at the peak electrode relative to snr x background RMS


@dataclass(frozen=True)
class Effect:
    """A class-dependent band-power change of one rhythm."""

    rhythm: str  # a Rhythm name
    cls: str  # the class in which the band power changes
    direction: int  # +1 synchronisation (power x (1+e)), -1 desynchronisation (/ (1+e))


RHYTHMS = (
    Rhythm("mu_left", "sensorimotor_left", "mu", 1.0),
    Rhythm("beta_left", "sensorimotor_left", "beta", 0.6),
    Rhythm("mu_right", "sensorimotor_right", "mu", 1.0),
    Rhythm("beta_right", "sensorimotor_right", "beta", 0.6),
    Rhythm("alpha_left", "parietooccipital_left", "alpha", 0.8),
    Rhythm("alpha_right", "parietooccipital_right", "alpha", 0.8),
    Rhythm("alpha_posterior", "posterior_midline", "alpha", 1.2),
    Rhythm("theta_frontal", "frontal_midline", "theta", 0.7),
)
RHYTHM_INDEX = {r.name: i for i, r in enumerate(RHYTHMS)}
#: Nominal band (Hz) and spectral width (standard deviation of the Gaussian peak, Hz).
BANDS: dict[str, tuple[tuple[float, float], float]] = {
    "theta": ((4.0, 8.0), 0.6),
    "alpha": ((8.0, 12.0), 0.6),
    "mu": ((8.0, 12.0), 0.7),
    "beta": ((18.0, 26.0), 1.5),
}

EFFECTS: dict[str, tuple[Effect, ...]] = {
    "motor_imagery": (
        Effect("mu_right", "left_hand", -1),
        Effect("beta_right", "left_hand", -1),
        Effect("mu_left", "right_hand", -1),
        Effect("beta_left", "right_hand", -1),
    ),
    "auditory_attention": (
        Effect("alpha_left", "left_ear", +1),
        Effect("alpha_right", "right_ear", +1),
    ),
    "internal_attention": (
        Effect("alpha_posterior", "internal", +1),
        Effect("theta_frontal", "internal", +1),
    ),
}
DESCRIPTIONS = {
    "motor_imagery": "Motor imagery: mu (8-12 Hz) and beta (18-26 Hz) desynchronise over the "
    "sensorimotor cortex contralateral to the imagined hand (left hand: C4, right hand: C3).",
    "auditory_attention": "Auditory attention: parieto-occipital alpha is higher over the "
    "hemisphere ipsilateral to the attended ear (left ear: left/PO7, right ear: right/PO8).",
    "internal_attention": "Internal attention: posterior (POz) alpha and frontal-midline (Fz) "
    "theta are higher during internal than during external attention.",
}

#: Artefact kinds: sources, nominal band (Hz), amplitude at the peak electrode (µV), rate key.
ARTIFACTS: dict[str, dict[str, Any]] = {
    "blink": {"sources": ("blink",), "band": (0.5, 4.0), "amplitude": 100.0},
    "saccade": {"sources": ("saccade",), "band": (0.1, 4.0), "amplitude": 50.0},
    "muscle": {"sources": ("muscle_left", "muscle_right"), "band": (20.0, None),
               "amplitude": 25.0},
}
ARTIFACT_DESCRIPTION = {
    "blink": "eye blink: 0.3 s positive bump, largest at frontopolar electrodes",
    "saccade": "horizontal saccade: step of 0.3-1.2 s, opposite polarity over left/right "
    "frontal electrodes",
    "muscle": "temporalis muscle burst: broadband > 20 Hz noise of 0.3-1.2 s over a temporal "
    "area (left, right or both)",
}


def seed_of(config: SimulatedConfig) -> int:
    """The master seed: ``config.seed``, or 0 when it is None.

    A None seed means "the study's top-level seed"; :class:`eegcrp.config.StudyConfig`
    replaces it before any loader runs. Outside a study (a bare ``SimulatedConfig``) it
    falls back to 0.
    """
    return 0 if config.seed is None else int(config.seed)


def rates(config: SimulatedConfig, kind: str, classes: Sequence[str]) -> dict[str, float]:
    """Events per second of artefact ``kind`` in each class (the confound raises one)."""
    base = {"blink": config.blink_rate, "saccade": config.saccade_rate,
            "muscle": config.muscle_rate}[kind]
    conf = config.confound
    return {
        c: base * (1.0 + conf.strength) if conf and conf.artifact == kind and conf.class_ == c
        else base
        for c in classes
    }


@dataclass
class SubjectParams:
    """Everything drawn for one subject (``truth`` is the part reported in the GroundTruth)."""

    truth: SubjectTruth
    patterns: np.ndarray  # (n_channels, n_sources), peak-normalised over all 10-05 sites
    corr_length: float  # spatial correlation length of the background (sphere radii)
    rhythm_amp: np.ndarray  # (n_rhythms,) RMS at the peak electrode in µV
    artifact_amp: dict[str, float]  # kind -> µV at the peak electrode
    line_amp: np.ndarray  # (n_channels,) µV
    line_phase: np.ndarray  # (n_channels,) rad
    channels: list[str]


def weak_subjects(config: SimulatedConfig) -> set[int]:
    """Subject numbers with weak/no effect: an exact fraction, drawn from (seed, 0)."""
    n_weak = int(math.floor(config.weak_fraction * config.n_subjects + 0.5))
    rng = np.random.default_rng(np.random.SeedSequence([seed_of(config), 0]))
    order = rng.permutation(np.arange(1, config.n_subjects + 1))
    return {int(k) for k in order[:n_weak]}


def subject_params(
    config: SimulatedConfig, number: int, subject: str, weak: bool, channels: Sequence[str],
    rng: np.random.Generator,
) -> SubjectParams:
    """Draw one subject's parameters (fixed draw order: independent of the config values)."""
    var = config.variability
    gain = float(np.exp(0.25 * var * rng.standard_normal()))
    exponent = float(np.clip(1.4 + var * rng.uniform(-0.4, 0.4), 0.8, 2.2))
    corr_length = float(0.8 * np.exp(0.2 * var * rng.standard_normal()))
    alpha = float(np.clip(10.25 + var * rng.uniform(-1.75, 1.75), 8.5, 12.0))
    mu = float(np.clip(alpha + 0.4 * var * rng.standard_normal(), 8.5, 12.0))
    beta = float(22.0 + var * rng.uniform(-2.0, 2.0))
    theta = float(6.0 + var * rng.uniform(-1.0, 1.0))
    strong_scale = float(np.exp(0.3 * var * rng.standard_normal()))
    weak_scale = float(rng.uniform(0.0, 0.25))
    scale = weak_scale if weak else strong_scale
    rhythm_jitter = np.exp(0.2 * var * rng.standard_normal(len(RHYTHMS)))
    artifact_jitter = np.exp(0.25 * var * rng.standard_normal(len(ARTIFACTS)))
    pos_jitter = 0.04 * var * rng.standard_normal((len(SOURCES), 3))
    ori_jitter = 0.15 * var * rng.standard_normal((len(SOURCES), 3))
    line_amp = config.line_noise_uv * np.exp(0.5 * rng.standard_normal(len(channels)))
    line_phase = 0.3 * rng.standard_normal(len(channels))

    positions, orients = [], []
    for source, dp, do in zip(SOURCES, pos_jitter, ori_jitter, strict=True):
        pos, ori = source_geometry(source)
        pos = pos + dp
        radius = np.linalg.norm(pos)
        if radius > 0.92:
            pos *= 0.92 / radius
        ori = ori + do
        positions.append(pos)
        orients.append(ori / np.linalg.norm(ori))
    pats = patterns(np.array(positions), np.array(orients), channels)

    peaks = {"alpha": alpha, "mu": mu, "beta": beta, "theta": theta}
    rhythm_amp = np.array(
        [config.snr * BACKGROUND_UV * gain * r.amplitude for r in RHYTHMS]
    ) * rhythm_jitter
    artifact_amp = {
        kind: spec["amplitude"] * float(j)
        for (kind, spec), j in zip(ARTIFACTS.items(), artifact_jitter, strict=True)
    }
    truth = SubjectTruth(
        subject=subject, number=number, weak=weak, effect_scale=scale,
        effect_size=config.effect_size * scale, gain=gain, aperiodic_exponent=exponent,
        peak_freqs=peaks,
    )
    return SubjectParams(truth, pats, corr_length, rhythm_amp, artifact_amp, line_amp,
                         line_phase, list(channels))

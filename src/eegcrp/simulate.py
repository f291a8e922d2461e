"""Simulated multi-subject EEG with known neural correlates.

The simulator is the embedded default data set of eegcrp (``eegcrp demo``) and the ground
truth against which explanations are checked: every class difference is planted by a
known source, in a known frequency band and time window, and every artefact is a known
source with its own spatial pattern.

Signal model (per subject, trial, channel; all amplitudes in µV, returned in volts)::

    x = background + rhythms (task-modulated) + artefacts + line noise + sensor noise

* **Forward model.** Electrodes are the 10-05 positions of the ``standard_1005`` montage
  projected onto a sphere fitted to them (radius ~10 cm). Sources are current dipoles
  inside that sphere, placed below an anchor electrode at a given depth (fraction of the
  radius), radially oriented unless stated. Their scalp potential is the exact solution
  for a dipole in a *homogeneous* conducting sphere (Legendre-series expansion, truncated
  when the terms fall below 1e-12). This ignores the poorly conducting skull, which in a
  real head smears potentials; the sources are therefore placed deeper than they are
  (brain 0.45-0.55, eyes and muscles 0.6-0.65 of the radius), which gives maps about as
  broad as three-shell models give for cortical sources (half maximum at the 10-10
  neighbours of the peak electrode). Each pattern is scaled so that its largest absolute
  value over all 343 10-05 electrodes is 1, so amplitudes mean "µV at the peak electrode"
  for any channel subset. No fsaverage, BEM or MRI is needed; the series agrees with
  MNE's sphere-model forward solution (tested).
* **Background.** Spatially correlated 1/f noise: one 1/f^beta time series per channel
  (beta ~1.4, per subject 1.0-1.8, synthesised in the frequency domain) mixed with the
  Cholesky factor of the covariance exp(-d/lambda) of electrode distances d, which is the
  covariance a dense sheet of random, independent distant sources produces to first order.
  RMS 10 µV per channel times the subject's gain.
* **Rhythms.** Narrow-band sources (Gaussian spectral peak, waxing and waning like real
  rhythms): mu (8-12 Hz) and beta (18-26 Hz) over left and right sensorimotor cortex
  (below C3, C4), alpha (8-12 Hz) over left and right parieto-occipital cortex (PO7, PO8)
  and the posterior midline (POz), frontal-midline theta (4-8 Hz, below Fz). All exist in
  every paradigm; only the paradigm's effects modulate them. Their RMS at the peak
  electrode is ``snr`` x the background RMS (beta 0.6x, lateral alpha 0.8x, midline
  alpha 1.2x, theta 0.7x).
* **Effects.** Within ``effect_window`` (cosine ramps of up to 0.25 s at both ends) the
  band power of a source is multiplied by ``1 + effect_size`` (synchronisation) or divided
  by it (desynchronisation) in the trials of one class:

  - motor_imagery (left_hand / right_hand): mu and beta desynchronise over the
    sensorimotor cortex contralateral to the imagined hand (left hand: C4, right: C3).
  - auditory_attention (left_ear / right_ear): alpha increases over the parieto-occipital
    cortex ipsilateral to the attended ear (left ear: PO7 side, right ear: PO8 side).
  - internal_attention (internal / external): posterior-midline alpha and frontal-midline
    theta increase during internal attention.
* **Artefacts.** Separate sources with their own patterns and Poisson-distributed events:
  eye blinks (frontal, 0.3 s bumps of ~100 µV), horizontal saccades (frontal, opposite
  polarity left/right, steps of ~50 µV) and temporal muscle bursts (broadband > 20 Hz,
  ~25 µV RMS). ``confound`` multiplies one artefact's rate in one class by
  ``1 + strength``, so a model can cheat through it. Per-trial event counts are stored in
  the metadata columns ``blinks``, ``saccades`` and ``muscle_bursts``.
* **Line and sensor noise.** A mains sinusoid (``mains_freq``, default 50 Hz; ~2 µV,
  varying over channels) and white sensor noise (1 µV RMS).
* **Subjects.** Each subject draws gain, 1/f exponent, spatial correlation length, peak
  frequencies (alpha/mu 8.5-12 Hz), effect strength, source position and orientation
  jitter and artefact amplitudes (all scaled by ``variability``); a fraction
  ``weak_fraction`` of subjects has a weak or no effect (0-25 % strength).

Randomness: subject *k* is generated from ``SeedSequence([seed, k])`` alone (one child
stream for parameters and one per signal component), so one subject can be simulated on
its own and the data are byte-identical to those of a full run; switching one component
off (e.g. ``blink_rate=0``) leaves every other component unchanged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal, overload

import mne
import numpy as np
import pandas as pd

from .config import SIMULATED_CLASSES, SimulatedConfig
from .data.base import BaseLoader, DataError, EEGDataset, make_epochs, make_montage

logger = logging.getLogger(__name__)

__all__ = [
    "CHANNEL_PRESETS",
    "ArtifactTruth",
    "Contrast",
    "EffectTruth",
    "GroundTruth",
    "SimulatedLoader",
    "SubjectTruth",
    "baseline_accuracy",
    "dipole_potentials",
    "resolve_channels",
    "simulate",
]

#: Channel presets: ``standard_64`` is the 64-electrode 10-10 layout of BioSemi-style caps,
#: ``actichamp_32`` the 32-electrode actiCAP layout, ``10-20_19`` the classic 10-20 set
#: (modern names T7/T8/P7/P8), ``c3cz_c4`` the three motor electrodes of BCI IV 2b.
CHANNEL_PRESETS: dict[str, tuple[str, ...]] = {
    "standard_64": (
        "Fp1", "AF7", "AF3", "F1", "F3", "F5", "F7", "FT7", "FC5", "FC3", "FC1", "C1",
        "C3", "C5", "T7", "TP7", "CP5", "CP3", "CP1", "P1", "P3", "P5", "P7", "P9",
        "PO7", "PO3", "O1", "Iz", "Oz", "POz", "Pz", "CPz", "Fpz", "Fp2", "AF8", "AF4",
        "AFz", "Fz", "F2", "F4", "F6", "F8", "FT8", "FC6", "FC4", "FC2", "FCz", "Cz",
        "C2", "C4", "C6", "T8", "TP8", "CP6", "CP4", "CP2", "P2", "P4", "P6", "P8",
        "P10", "PO8", "PO4", "O2",
    ),
    "actichamp_32": (
        "Fp1", "Fz", "F3", "F7", "FT9", "FC5", "FC1", "C3", "T7", "TP9", "CP5", "CP1",
        "Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "TP10", "CP6", "CP2", "Cz", "C4",
        "T8", "FT10", "FC6", "FC2", "F4", "F8", "Fp2",
    ),
    "10-20_19": (
        "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
        "P3", "Pz", "P4", "P8", "O1", "O2",
    ),
    "c3cz_c4": ("C3", "Cz", "C4"),
}

#: RMS of the 1/f background per channel in µV (before the subject's gain).
BACKGROUND_UV = 10.0
#: Electrodes with at least this fraction of a source's peak |pattern| are its channels.
CHANNEL_THRESHOLD = 0.5
_RAMP_S = 0.25
_FORWARD_MODEL = (
    "current dipoles in a homogeneous conducting sphere fitted to the standard_1005 "
    "electrode positions (exact Legendre-series potential, no skull layer; sources placed "
    "at 0.45-0.65 of the radius to mimic skull smearing); patterns scaled to a peak |value| "
    "of 1 over all 10-05 electrodes"
)


# =========================================================================== geometry
@dataclass(frozen=True)
class _Head:
    names: tuple[str, ...]
    unit: np.ndarray  # (n_electrodes, 3) directions from the sphere centre
    radius: float  # metres
    index: dict[str, int]  # lower-case name -> row


def _fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points: |x|^2 = 2 c.x + (R^2 - |c|^2)."""
    design = np.column_stack([2 * points, np.ones(len(points))])
    target = np.sum(points**2, axis=1)
    sol, *_ = np.linalg.lstsq(design, target, rcond=None)
    center = sol[:3]
    return center, float(np.sqrt(sol[3] + center @ center))


@lru_cache(maxsize=1)
def _head() -> _Head:
    positions = make_montage("standard_1005").get_positions()["ch_pos"]
    names = tuple(positions)
    xyz = np.array([positions[n] for n in names], dtype=np.float64)
    center, radius = _fit_sphere(xyz)
    rel = xyz - center
    unit = rel / np.linalg.norm(rel, axis=1, keepdims=True)
    unit.setflags(write=False)
    return _Head(names, unit, radius, {n.lower(): i for i, n in enumerate(names)})


def resolve_channels(channels: str | Sequence[str]) -> list[str]:
    """Channel names of a preset or a list of 10-05 names (case-insensitive).

    Raises
    ------
    DataError
        For an unknown preset, unknown or duplicate electrode names.
    """
    if isinstance(channels, str):
        if channels not in CHANNEL_PRESETS:
            raise DataError(
                f"simulated: unknown channel preset {channels!r}; use one of "
                f"{list(CHANNEL_PRESETS)} or a list of 10-05 electrode names"
            )
        return list(CHANNEL_PRESETS[channels])
    head = _head()
    names = [str(c) for c in channels]
    if not names:
        raise DataError("simulated: the channel list is empty; name at least one electrode")
    unknown = [c for c in names if c.lower() not in head.index]
    if unknown:
        raise DataError(
            f"simulated: channel(s) {unknown} are not 10-05 electrode names; use names of "
            "the standard_1005 montage (e.g. 'C3', 'FCz', 'PO7'; mne.channels."
            "make_standard_montage('colin27_1005').ch_names lists them) or a preset: "
            f"{list(CHANNEL_PRESETS)}"
        )
    canonical = [head.names[head.index[c.lower()]] for c in names]
    dup = sorted({c for c in canonical if canonical.count(c) > 1})
    if dup:
        raise DataError(f"simulated: channel(s) {dup} are listed twice; list each once")
    return canonical


def dipole_potentials(
    electrodes: np.ndarray, positions: np.ndarray, moments: np.ndarray, tol: float = 1e-12
) -> np.ndarray:
    """Scalp potentials of current dipoles in a homogeneous unit sphere.

    Uses the Legendre expansion of the potential on the surface of a homogeneous sphere
    (radius 1) of a dipole with moment ``p`` at ``r0`` (``|r0| = f < 1``)::

        V(e) ∝ sum_n (2n+1)/n f^(n-1) [n (p.u) P_n(x) + (p.e - (p.u) x) P_n'(x)]

    with ``u = r0/|r0|`` and ``x = e.u``: the radial part of the moment drives the zonal
    terms, the tangential part their derivative. For ``f = 0`` this is ``3 p.e``, three
    times the potential in an infinite medium.

    Parameters
    ----------
    electrodes : ndarray, shape (n_electrodes, 3)
        Unit vectors of the electrodes.
    positions : ndarray, shape (n_dipoles, 3)
        Dipole positions in units of the sphere radius (norm < 1).
    moments : ndarray, shape (n_dipoles, 3)
        Dipole moments (orientation x strength).

    Returns
    -------
    ndarray, shape (n_electrodes, n_dipoles)
        Potentials in units of ``|p| / (4 pi sigma R^2)``.
    """
    e = np.asarray(electrodes, dtype=np.float64)
    r0 = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    p = np.atleast_2d(np.asarray(moments, dtype=np.float64))
    f = np.linalg.norm(r0, axis=1)
    if np.any(f >= 0.99):
        raise ValueError("dipoles must lie inside the sphere (|position| < 0.99)")
    u = np.where(f[:, None] > 0, r0 / np.where(f > 0, f, 1.0)[:, None], [0.0, 0.0, 1.0])
    x = np.clip(e @ u.T, -1.0, 1.0)
    pu = np.sum(p * u, axis=1)[None, :]
    tangential = e @ p.T - pu * x
    p_prev, p_cur = np.ones_like(x), x  # P_0, P_1
    d_prev, d_cur = np.zeros_like(x), np.ones_like(x)  # P_0', P_1'
    total = np.zeros_like(x)
    f_pow = np.ones_like(f)
    n = 1
    while True:
        total += (2 * n + 1) / n * f_pow * (n * pu * p_cur + tangential * d_cur)
        f_pow = f_pow * f
        # |P_n| <= 1 and |P_n'| <= n(n+1)/2 bound the remaining terms
        if np.max(f_pow) * (n + 2) ** 2 < tol or n > 5000:
            break
        p_prev, p_cur = p_cur, ((2 * n + 1) * x * p_cur - n * p_prev) / (n + 1)
        d_prev, d_cur = d_cur, d_prev + (2 * n + 1) * p_prev
        n += 1
    return total


# =========================================================================== model tables
@dataclass(frozen=True)
class _Source:
    name: str
    anchor: str  # electrode (or "eyes") above the source
    depth: float  # distance from the centre as a fraction of the radius
    region: str
    orient: str = "radial"  # "radial", "lateral" (+x, to the right) or an electrode name


@dataclass(frozen=True)
class _Rhythm:
    name: str
    source: str
    rhythm: str  # mu | beta | alpha | theta
    amplitude: float  # RMS at the peak electrode relative to snr x background RMS


@dataclass(frozen=True)
class _Effect:
    rhythm: str  # a _Rhythm name
    cls: str  # the class in which the band power changes
    direction: int  # +1 synchronisation (power x (1+e)), -1 desynchronisation (/ (1+e))


_BRAIN_SOURCES = (
    _Source("sensorimotor_left", "C3", 0.55, "left sensorimotor cortex (hand area)"),
    _Source("sensorimotor_right", "C4", 0.55, "right sensorimotor cortex (hand area)"),
    _Source("parietooccipital_left", "PO7", 0.55, "left parieto-occipital cortex"),
    _Source("parietooccipital_right", "PO8", 0.55, "right parieto-occipital cortex"),
    _Source("posterior_midline", "POz", 0.5, "posterior midline (parieto-occipital) cortex"),
    _Source("frontal_midline", "Fz", 0.45, "frontal midline (medial prefrontal/cingulate)"),
)
_ARTIFACT_SOURCES = (
    _Source("blink", "eyes", 0.65, "eyes (vertical EOG, frontopolar)", orient="Fpz"),
    _Source("saccade", "eyes", 0.6, "eyes (horizontal EOG, lateral frontal)", orient="lateral"),
    _Source("muscle_left", "T7", 0.65, "left temporalis muscle"),
    _Source("muscle_right", "T8", 0.65, "right temporalis muscle"),
)
#: How far below the frontopolar electrodes the eye sources lie (in z, sphere radii).
_EYES_DROP = 0.35
_SOURCES = _BRAIN_SOURCES + _ARTIFACT_SOURCES
_SOURCE_INDEX = {s.name: i for i, s in enumerate(_SOURCES)}

_RHYTHMS = (
    _Rhythm("mu_left", "sensorimotor_left", "mu", 1.0),
    _Rhythm("beta_left", "sensorimotor_left", "beta", 0.6),
    _Rhythm("mu_right", "sensorimotor_right", "mu", 1.0),
    _Rhythm("beta_right", "sensorimotor_right", "beta", 0.6),
    _Rhythm("alpha_left", "parietooccipital_left", "alpha", 0.8),
    _Rhythm("alpha_right", "parietooccipital_right", "alpha", 0.8),
    _Rhythm("alpha_posterior", "posterior_midline", "alpha", 1.2),
    _Rhythm("theta_frontal", "frontal_midline", "theta", 0.7),
)
_RHYTHM_INDEX = {r.name: i for i, r in enumerate(_RHYTHMS)}
#: Nominal band (Hz) and spectral width (standard deviation of the Gaussian peak, Hz).
_BANDS: dict[str, tuple[tuple[float, float], float]] = {
    "theta": ((4.0, 8.0), 0.6),
    "alpha": ((8.0, 12.0), 0.6),
    "mu": ((8.0, 12.0), 0.7),
    "beta": ((18.0, 26.0), 1.5),
}

_EFFECTS: dict[str, tuple[_Effect, ...]] = {
    "motor_imagery": (
        _Effect("mu_right", "left_hand", -1),
        _Effect("beta_right", "left_hand", -1),
        _Effect("mu_left", "right_hand", -1),
        _Effect("beta_left", "right_hand", -1),
    ),
    "auditory_attention": (
        _Effect("alpha_left", "left_ear", +1),
        _Effect("alpha_right", "right_ear", +1),
    ),
    "internal_attention": (
        _Effect("alpha_posterior", "internal", +1),
        _Effect("theta_frontal", "internal", +1),
    ),
}
_DESCRIPTIONS = {
    "motor_imagery": "Motor imagery: mu (8-12 Hz) and beta (18-26 Hz) desynchronise over the "
    "sensorimotor cortex contralateral to the imagined hand (left hand: C4, right hand: C3).",
    "auditory_attention": "Auditory attention: parieto-occipital alpha is higher over the "
    "hemisphere ipsilateral to the attended ear (left ear: left/PO7, right ear: right/PO8).",
    "internal_attention": "Internal attention: posterior (POz) alpha and frontal-midline (Fz) "
    "theta are higher during internal than during external attention.",
}

#: Artefact kinds: sources, nominal band (Hz), amplitude at the peak electrode (µV), rate key.
_ARTIFACTS: dict[str, dict[str, Any]] = {
    "blink": {"sources": ("blink",), "band": (0.5, 4.0), "amplitude": 100.0},
    "saccade": {"sources": ("saccade",), "band": (0.1, 4.0), "amplitude": 50.0},
    "muscle": {"sources": ("muscle_left", "muscle_right"), "band": (20.0, None),
               "amplitude": 25.0},
}
_ARTIFACT_DESCRIPTION = {
    "blink": "eye blink: 0.3 s positive bump, largest at frontopolar electrodes",
    "saccade": "horizontal saccade: step of 0.3-1.2 s, opposite polarity over left/right "
    "frontal electrodes",
    "muscle": "temporalis muscle burst: broadband > 20 Hz noise of 0.3-1.2 s over a temporal "
    "area (left, right or both)",
}


# =========================================================================== ground truth
@dataclass
class EffectTruth:
    """One planted effect: a source whose band power differs between the classes.

    Attributes
    ----------
    name : str
        Rhythm name (``mu_right``, ``alpha_posterior`` ...).
    rhythm : str
        mu, beta, alpha or theta.
    source, region, anchor : str
        Source name, brain region and the electrode above it.
    band : list of float
        Nominal frequency band [low, high] in Hz (subjects' peaks in ``subjects``).
    time_window : list of float
        [start, end] in s from trial onset.
    channels : list of str
        Simulated channels where the pattern reaches >= 50 % of its peak (may be empty
        when the channel set does not cover the region).
    peak_channel : str
        Simulated channel with the largest |pattern|.
    pattern : list of float
        Nominal spatial pattern over the simulated channels (peak |value| over all 10-05
        electrodes = 1; subjects' patterns are jittered around it).
    power_ratio : dict of str to float
        Class -> band power in the window relative to outside it (nominal effect size).
    higher_in : str | None
        Class with the larger band power (None if effect_size is 0).
    sign : dict of str to int
        Class -> +1 (more band power than the other class), -1 (less) or 0.
    """

    name: str
    rhythm: str
    source: str
    region: str
    anchor: str
    band: list[float]
    time_window: list[float]
    channels: list[str]
    peak_channel: str
    pattern: list[float]
    power_ratio: dict[str, float]
    higher_in: str | None
    sign: dict[str, int]


@dataclass
class Contrast:
    """The discriminative signal between two classes."""

    classes: list[str]
    description: str
    time_window: list[float]
    effects: list[EffectTruth]

    @property
    def channels(self) -> list[str]:
        """Union of the effects' channels, in channel order of the first appearance."""
        out: list[str] = []
        for eff in self.effects:
            out.extend(c for c in eff.channels if c not in out)
        return out

    @property
    def bands(self) -> list[list[float]]:
        """Distinct bands of the effects."""
        out: list[list[float]] = []
        for eff in self.effects:
            if eff.band not in out:
                out.append(eff.band)
        return out


@dataclass
class ArtifactTruth:
    """One artefact source.

    Attributes
    ----------
    name, kind : str
        Source name (``muscle_left``) and artefact kind (blink, saccade or muscle).
    description, region : str
    band : list
        [low, high] in Hz (high None = up to Nyquist).
    amplitude_uv : float
        Typical amplitude at the peak electrode (blink/saccade: peak; muscle: RMS).
    rate_hz : dict of str to float
        Class -> events per second (per source kind).
    channels, peak_channel, pattern :
        As in :class:`EffectTruth`.
    confounded_with : str | None
        Class whose trials have more of this artefact (the ``confound`` config).
    confound_strength : float
        Rate in that class is multiplied by ``1 + confound_strength``.
    """

    name: str
    kind: str
    description: str
    region: str
    band: list[float | None]
    amplitude_uv: float
    rate_hz: dict[str, float]
    channels: list[str]
    peak_channel: str
    pattern: list[float]
    confounded_with: str | None = None
    confound_strength: float = 0.0


@dataclass
class SubjectTruth:
    """Parameters drawn for one subject."""

    subject: str
    number: int
    weak: bool
    effect_scale: float
    effect_size: float
    gain: float
    aperiodic_exponent: float
    peak_freqs: dict[str, float]


@dataclass
class GroundTruth:
    """What carries the class information in a simulated data set, and what is artefact.

    ``contrasts`` lists per class pair the effects (source, channels, band, time window,
    direction per class); ``artifacts`` the artefact sources with their patterns and any
    class confound; ``subjects`` the parameters drawn per subject. :meth:`to_dict` gives a
    JSON-serialisable dict (stored in ``EEGDataset.info['ground_truth']``),
    :meth:`from_dict` reads it back.
    """

    paradigm: str
    classes: list[str]
    event_id: dict[str, int]
    ch_names: list[str]
    sfreq: float
    trial_duration: float
    time_window: list[float]
    effect_size: float
    snr: float
    mains_freq: float | None
    forward_model: str
    contrasts: list[Contrast]
    artifacts: list[ArtifactTruth]
    subjects: dict[str, SubjectTruth] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroundTruth:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["contrasts"] = [
            Contrast(**{**c, "effects": [EffectTruth(**e) for e in c["effects"]]})
            for c in data["contrasts"]
        ]
        data["artifacts"] = [ArtifactTruth(**a) for a in data["artifacts"]]
        data["subjects"] = {k: SubjectTruth(**v) for k, v in data.get("subjects", {}).items()}
        return cls(**data)

    def channel_weights(self, contrast: int = 0) -> dict[str, float]:
        """Expected relevance per channel: the max |pattern| over the contrast's effects."""
        weights = np.max(
            np.abs([e.pattern for e in self.contrasts[contrast].effects]), axis=0
        )
        return {c: float(w) for c, w in zip(self.ch_names, weights, strict=True)}

    def artifact_channels(self) -> list[str]:
        """Channels dominated by any artefact source."""
        out: list[str] = []
        for art in self.artifacts:
            out.extend(c for c in art.channels if c not in out)
        return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


# =========================================================================== subjects
@dataclass
class _SubjectParams:
    truth: SubjectTruth
    patterns: np.ndarray  # (n_channels, n_sources), peak-normalised over all 10-05 sites
    corr_length: float  # spatial correlation length of the background (sphere radii)
    rhythm_amp: np.ndarray  # (n_rhythms,) RMS at the peak electrode in µV
    artifact_amp: dict[str, float]  # kind -> µV at the peak electrode
    line_amp: np.ndarray  # (n_channels,) µV
    line_phase: np.ndarray  # (n_channels,) rad
    channels: list[str]


def _source_geometry(source: _Source) -> tuple[np.ndarray, np.ndarray]:
    """Nominal position (sphere radii) and unit orientation of a source."""
    head = _head()
    if source.anchor == "eyes":
        # below and in front of the frontopolar electrodes
        direction = head.unit[head.index["fpz"]] + np.array([0.0, 0.0, -_EYES_DROP])
    else:
        direction = head.unit[head.index[source.anchor.lower()]].copy()
    direction /= np.linalg.norm(direction)
    if source.orient == "radial":
        orient = direction.copy()
    elif source.orient == "lateral":
        orient = np.array([1.0, 0.0, 0.0])
    else:
        orient = head.unit[head.index[source.orient.lower()]].copy()
    return source.depth * direction, orient / np.linalg.norm(orient)


def _patterns(positions: np.ndarray, orients: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """(n_channels, n_sources) patterns, each scaled to peak |value| 1 over all 10-05 sites."""
    head = _head()
    full = dipole_potentials(head.unit, positions, orients)
    full /= np.max(np.abs(full), axis=0, keepdims=True)
    rows = [head.index[c.lower()] for c in channels]
    return full[rows]


def _nominal_patterns(channels: Sequence[str]) -> np.ndarray:
    geometry = [_source_geometry(s) for s in _SOURCES]
    return _patterns(
        np.array([g[0] for g in geometry]), np.array([g[1] for g in geometry]), channels
    )


def _weak_subjects(config: SimulatedConfig) -> set[int]:
    """Subject numbers with weak/no effect: an exact fraction, drawn from (seed, 0)."""
    n_weak = int(math.floor(config.weak_fraction * config.n_subjects + 0.5))
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0]))
    order = rng.permutation(np.arange(1, config.n_subjects + 1))
    return {int(k) for k in order[:n_weak]}


def _subject_params(
    config: SimulatedConfig, number: int, subject: str, weak: bool, channels: Sequence[str],
    rng: np.random.Generator,
) -> _SubjectParams:
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
    rhythm_jitter = np.exp(0.2 * var * rng.standard_normal(len(_RHYTHMS)))
    artifact_jitter = np.exp(0.25 * var * rng.standard_normal(len(_ARTIFACTS)))
    pos_jitter = 0.04 * var * rng.standard_normal((len(_SOURCES), 3))
    ori_jitter = 0.15 * var * rng.standard_normal((len(_SOURCES), 3))
    line_amp = config.line_noise_uv * np.exp(0.5 * rng.standard_normal(len(channels)))
    line_phase = 0.3 * rng.standard_normal(len(channels))

    positions, orients = [], []
    for source, dp, do in zip(_SOURCES, pos_jitter, ori_jitter, strict=True):
        pos, ori = _source_geometry(source)
        pos = pos + dp
        radius = np.linalg.norm(pos)
        if radius > 0.92:
            pos *= 0.92 / radius
        ori = ori + do
        positions.append(pos)
        orients.append(ori / np.linalg.norm(ori))
    patterns = _patterns(np.array(positions), np.array(orients), channels)

    peaks = {"alpha": alpha, "mu": mu, "beta": beta, "theta": theta}
    rhythm_amp = np.array(
        [config.snr * BACKGROUND_UV * gain * r.amplitude for r in _RHYTHMS]
    ) * rhythm_jitter
    artifact_amp = {
        kind: spec["amplitude"] * float(j)
        for (kind, spec), j in zip(_ARTIFACTS.items(), artifact_jitter, strict=True)
    }
    truth = SubjectTruth(
        subject=subject, number=number, weak=weak, effect_scale=scale,
        effect_size=config.effect_size * scale, gain=gain, aperiodic_exponent=exponent,
        peak_freqs=peaks,
    )
    return _SubjectParams(truth, patterns, corr_length, rhythm_amp, artifact_amp, line_amp,
                          line_phase, list(channels))


# =========================================================================== signals
def _spectral_noise(
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


def _mix(matrix: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """``matrix`` (n_out, n_in) applied to channel-major ``signals`` (n_in, n_trials, n_times)
    as one BLAS call (numpy's broadcast matmul over trials is an order of magnitude slower)."""
    n_in, n_trials, n_times = signals.shape
    return (matrix @ signals.reshape(n_in, -1)).reshape(len(matrix), n_trials, n_times)


def _window(times: np.ndarray, start: float, end: float) -> np.ndarray:
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


def _rates(config: SimulatedConfig, kind: str, classes: Sequence[str]) -> dict[str, float]:
    base = {"blink": config.blink_rate, "saccade": config.saccade_rate,
            "muscle": config.muscle_rate}[kind]
    conf = config.confound
    return {
        c: base * (1.0 + conf.strength) if conf and conf.artifact == kind and conf.class_ == c
        else base
        for c in classes
    }


def _simulate_subject(
    config: SimulatedConfig, params: _SubjectParams, streams: list[np.random.Generator],
    mains: float | None,
) -> tuple[np.ndarray, list[str], pd.DataFrame]:
    """Trials (n_trials, n_channels, n_times) in volts, labels and per-trial metadata.

    Everything is built channel-major (n_channels or n_sources, n_trials, n_times), so
    the spatial mixing is a single matrix product, and transposed once at the end.
    """
    rng_labels, rng_bg, rng_rhythm, rng_blink, rng_saccade, rng_muscle, rng_line, rng_sensor = (
        streams
    )
    classes = SIMULATED_CLASSES[config.paradigm]
    sfreq = config.sfreq
    n_times = int(round(config.trial_duration * sfreq))
    n_trials = config.n_trials
    n_ch = params.patterns.shape[0]
    times = np.arange(n_times) / sfreq
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    truth = params.truth

    labels = [classes[i % 2] for i in range(n_trials)]
    labels = [labels[i] for i in rng_labels.permutation(n_trials)]
    is_class = {c: np.array([lab == c for lab in labels]) for c in classes}

    # ---- background: spatially correlated 1/f noise
    head = _head()
    unit = head.unit[[head.index[c.lower()] for c in params.channels]]
    dist = np.linalg.norm(unit[:, None, :] - unit[None, :, :], axis=-1)
    mixing = np.linalg.cholesky(np.exp(-dist / params.corr_length) + 1e-9 * np.eye(n_ch))
    pink_gain = np.zeros_like(freqs)
    pink_gain[1:] = np.maximum(freqs[1:], 1.0) ** (-truth.aperiodic_exponent / 2)
    pink = _spectral_noise(rng_bg, (n_ch, n_trials), n_times, pink_gain)
    data = _mix(BACKGROUND_UV * truth.gain * mixing, pink)
    del pink

    # ---- rhythms and their task modulation
    gains = np.empty((len(_RHYTHMS), 1, len(freqs)))
    for i, rhythm in enumerate(_RHYTHMS):
        width = _BANDS[rhythm.rhythm][1]
        gains[i, 0] = np.exp(-0.5 * ((freqs - truth.peak_freqs[rhythm.rhythm]) / width) ** 2)
    rhythms = _spectral_noise(rng_rhythm, (len(_RHYTHMS), n_trials), n_times, gains)
    rhythms *= params.rhythm_amp[:, None, None]
    window = _window(times, *config.effect_window)
    for effect in _EFFECTS[config.paradigm]:
        ratio = (1.0 + truth.effect_size) ** effect.direction
        envelope = 1.0 + (math.sqrt(ratio) - 1.0) * window
        rhythms[_RHYTHM_INDEX[effect.rhythm], is_class[effect.cls]] *= envelope
    sources = np.zeros((len(_SOURCES), n_trials, n_times))
    for i, rhythm in enumerate(_RHYTHMS):
        sources[_SOURCE_INDEX[rhythm.source]] += rhythms[i]
    del rhythms

    # ---- artefacts (event loops: a few per trial at most)
    duration = config.trial_duration
    counts: dict[str, np.ndarray] = {}

    def n_events(rng: np.random.Generator, kind: str) -> np.ndarray:
        rates = _rates(config, kind, classes)
        return rng.poisson(np.array([rates[lab] * duration for lab in labels]))

    blink = sources[_SOURCE_INDEX["blink"]]
    counts["blinks"] = n_events(rng_blink, "blink")
    for trial in np.flatnonzero(counts["blinks"]):
        for _ in range(counts["blinks"][trial]):
            onset = rng_blink.uniform(-0.2, duration)
            width = rng_blink.uniform(0.05, 0.09)
            amp = params.artifact_amp["blink"] * np.exp(0.2 * rng_blink.standard_normal())
            blink[trial] += amp * np.exp(-0.5 * ((times - onset) / width) ** 2)

    saccade = sources[_SOURCE_INDEX["saccade"]]
    counts["saccades"] = n_events(rng_saccade, "saccade")
    for trial in np.flatnonzero(counts["saccades"]):
        for _ in range(counts["saccades"][trial]):
            onset = rng_saccade.uniform(-0.5, duration)
            length = rng_saccade.uniform(0.3, 1.2)
            amp = params.artifact_amp["saccade"] * np.exp(0.2 * rng_saccade.standard_normal())
            sign = 1.0 if rng_saccade.random() < 0.5 else -1.0
            edge = 0.02  # s, smooth the step a little
            step = 0.5 * (np.tanh((times - onset) / edge)
                          - np.tanh((times - onset - length) / edge))
            saccade[trial] += sign * amp * step

    counts["muscle_bursts"] = n_events(rng_muscle, "muscle")
    hf_gain = np.clip((freqs - 15.0) / 10.0, 0.0, 1.0)
    hf = _spectral_noise(rng_muscle, (2, n_trials), n_times, hf_gain)
    sides = (sources[_SOURCE_INDEX["muscle_left"]], sources[_SOURCE_INDEX["muscle_right"]])
    for trial in np.flatnonzero(counts["muscle_bursts"]):
        for _ in range(counts["muscle_bursts"][trial]):
            onset = rng_muscle.uniform(-0.3, duration)
            length = rng_muscle.uniform(0.3, 1.2)
            amp = params.artifact_amp["muscle"] * np.exp(0.25 * rng_muscle.standard_normal())
            side = int(rng_muscle.integers(3))  # 0 left, 1 right, 2 both
            phase = np.clip((times - onset) / length, 0.0, 1.0)
            # sin^2 envelope scaled so that ``amp`` is the RMS over the burst
            envelope = amp * math.sqrt(8 / 3) * np.sin(np.pi * phase) ** 2
            for k in (0, 1):
                if side in (k, 2):
                    sides[k][trial] += envelope * hf[k, trial]
    del hf

    data += _mix(params.patterns, sources)
    del sources

    # ---- mains and sensor noise
    if mains is not None and config.line_noise_uv > 0:
        phase = rng_line.uniform(0, 2 * np.pi, n_trials)[None, :] + params.line_phase[:, None]
        amp = params.line_amp[:, None]
        arg = 2 * np.pi * mains * times
        # a sin(wt + phi) = a cos(phi) sin(wt) + a sin(phi) cos(wt)
        data += (amp * np.cos(phase))[..., None] * np.sin(arg)
        data += (amp * np.sin(phase))[..., None] * np.cos(arg)
    if config.sensor_noise_uv > 0:
        data += config.sensor_noise_uv * rng_sensor.standard_normal(data.shape)

    out = np.empty((n_trials, n_ch, n_times))
    np.multiply(data.transpose(1, 0, 2), 1e-6, out=out)  # µV -> V, trial-major
    meta = pd.DataFrame({k: v.astype(int) for k, v in counts.items()})
    return out, labels, meta


# =========================================================================== loader
class SimulatedLoader(BaseLoader):
    """Simulated subjects as a loader (``kind: simulated``); see the module docstring.

    Subject ids are ``S01`` .. ``S<n_subjects>``; ``config.subjects`` picks numbers.
    Every subject is generated on its own from ``(config.seed, number)``.
    """

    name = "simulated"
    task = "motor_imagery"  # replaced by config.paradigm per instance
    default_folder = "simulated"
    mains_freq = 50.0

    def __init__(self, config: SimulatedConfig | Mapping[str, Any]) -> None:
        if isinstance(config, Mapping):
            config = SimulatedConfig.model_validate(dict(config))
        super().__init__(config)
        self.task = config.paradigm  # type: ignore[misc]
        self.ch_names = resolve_channels(config.channels)
        self.classes = list(SIMULATED_CLASSES[config.paradigm])
        self.event_id = {c: i + 1 for i, c in enumerate(self.classes)}
        mains = self.site_mains_freq()
        if mains is not None and mains >= config.sfreq / 2:
            raise DataError(
                f"simulated: mains frequency {mains} Hz is at or above Nyquist "
                f"({config.sfreq / 2} Hz); raise sfreq or set mains_freq lower"
            )
        self._weak = _weak_subjects(config)
        self._width = max(2, len(str(config.n_subjects)))

    # ------------------------------------------------------------------ ids
    def _subject_id(self, number: int) -> str:
        return f"S{number:0{self._width}d}"

    def _number(self, subject: str) -> int:
        try:
            number = int(str(subject).lstrip("Ss"))
        except ValueError:
            number = -1
        if not 1 <= number <= self.config.n_subjects or self._subject_id(number) != subject:
            raise DataError(
                f"simulated: no subject {subject!r}; subjects are {self._subject_id(1)} .. "
                f"{self._subject_id(self.config.n_subjects)} (raise n_subjects for more)"
            )
        return number

    def subject_ids(self) -> list[str]:
        wanted = self.config.subjects
        numbers = range(1, self.config.n_subjects + 1) if wanted is None else wanted
        bad = sorted(n for n in numbers if not 1 <= n <= self.config.n_subjects)
        if bad:
            raise DataError(
                f"simulated: subjects {bad} are outside 1..{self.config.n_subjects}; pick "
                "numbers in that range or raise n_subjects"
            )
        return [self._subject_id(n) for n in numbers]

    def files(self, subject: str) -> list:
        """No files: the cache key comes from the config."""
        self._number(subject)
        return []

    # ------------------------------------------------------------------ generation
    def _streams(self, number: int) -> tuple[np.random.Generator, list[np.random.Generator]]:
        children = np.random.SeedSequence([self.config.seed, number]).spawn(9)
        gens = [np.random.default_rng(c) for c in children]
        return gens[0], gens[1:]

    def _params(self, number: int, rng: np.random.Generator | None = None) -> _SubjectParams:
        if rng is None:
            rng = self._streams(number)[0]
        return _subject_params(
            self.config, number, self._subject_id(number), number in self._weak,
            self.ch_names, rng,
        )

    def simulate_subject(self, subject: str) -> tuple[np.ndarray, list[str], pd.DataFrame]:
        """Raw arrays of one subject: data in volts, labels and metadata."""
        number = self._number(subject)
        param_rng, streams = self._streams(number)
        params = self._params(number, param_rng)
        return _simulate_subject(self.config, params, streams, self.site_mains_freq())

    def load_subject(self, subject: str) -> mne.BaseEpochs:
        data, labels, meta = self.simulate_subject(subject)
        return make_epochs(
            data,
            ch_names=self.ch_names,
            sfreq=self.config.sfreq,
            labels=labels,
            event_id=self.event_id,
            subject=subject,
            montage=_montage(),
            metadata=meta,
            source="simulated",
            line_freq=self.site_mains_freq(),
        )

    def ground_truth(self, subjects: Sequence[str] | None = None) -> GroundTruth:
        """The planted effects and artefacts (and the parameters of ``subjects``)."""
        cfg = self.config
        ids = self.subject_ids() if subjects is None else list(subjects)
        nominal = _nominal_patterns(self.ch_names)
        window = [float(cfg.effect_window[0]), float(cfg.effect_window[1])]

        def spatial(source: str) -> tuple[list[str], str, list[float]]:
            pattern = nominal[:, _SOURCE_INDEX[source]]
            chans = [c for c, v in zip(self.ch_names, pattern, strict=True)
                     if abs(v) >= CHANNEL_THRESHOLD]
            peak = self.ch_names[int(np.argmax(np.abs(pattern)))]
            return chans, peak, [round(float(v), 6) for v in pattern]

        effects = []
        for eff in _EFFECTS[cfg.paradigm]:
            rhythm = _RHYTHMS[_RHYTHM_INDEX[eff.rhythm]]
            source = _SOURCES[_SOURCE_INDEX[rhythm.source]]
            ratio = (1.0 + cfg.effect_size) ** eff.direction
            power = {c: (ratio if c == eff.cls else 1.0) for c in self.classes}
            if cfg.effect_size == 0:
                higher, sign = None, {c: 0 for c in self.classes}
            else:
                higher = max(power, key=power.__getitem__)
                sign = {c: (1 if c == higher else -1) for c in self.classes}
            chans, peak, pattern = spatial(source.name)
            effects.append(EffectTruth(
                name=rhythm.name, rhythm=rhythm.rhythm, source=source.name,
                region=source.region, anchor=source.anchor,
                band=list(_BANDS[rhythm.rhythm][0]), time_window=window, channels=chans,
                peak_channel=peak, pattern=pattern, power_ratio=power, higher_in=higher,
                sign=sign,
            ))
        contrast = Contrast(list(self.classes), _DESCRIPTIONS[cfg.paradigm], window, effects)

        artifacts = []
        conf = cfg.confound
        for kind, spec in _ARTIFACTS.items():
            rates = _rates(cfg, kind, self.classes)
            for name in spec["sources"]:
                source = _SOURCES[_SOURCE_INDEX[name]]
                chans, peak, pattern = spatial(name)
                hit = conf is not None and conf.artifact == kind
                low, high = spec["band"]
                artifacts.append(ArtifactTruth(
                    name=name, kind=kind, description=_ARTIFACT_DESCRIPTION[kind],
                    region=source.region, band=[low, high if high else cfg.sfreq / 2],
                    amplitude_uv=spec["amplitude"], rate_hz=rates, channels=chans,
                    peak_channel=peak, pattern=pattern,
                    confounded_with=conf.class_ if hit and conf else None,
                    confound_strength=float(conf.strength) if hit and conf else 0.0,
                ))
        return GroundTruth(
            paradigm=cfg.paradigm, classes=list(self.classes), event_id=dict(self.event_id),
            ch_names=list(self.ch_names), sfreq=float(cfg.sfreq),
            trial_duration=float(cfg.trial_duration), time_window=window,
            effect_size=float(cfg.effect_size), snr=float(cfg.snr),
            mains_freq=self.site_mains_freq(), forward_model=_FORWARD_MODEL,
            contrasts=[contrast], artifacts=artifacts,
            subjects={s: self._params(self._number(s)).truth for s in ids},
        )

    def load(self, subjects: Sequence[str] | None = None, progress: bool = False) -> EEGDataset:
        """Simulate all (or the given) subjects; ``info`` holds the ground truth."""
        from tqdm.auto import tqdm

        ids = self.subject_ids() if subjects is None else list(subjects)
        start = time.perf_counter()
        epochs = {}
        for sid in tqdm(ids, desc="simulate", disable=not progress, unit="subject"):
            epochs[sid] = self.load_subject(sid)
        logger.info("simulated %d subjects in %.1f s", len(ids), time.perf_counter() - start)
        return EEGDataset(self.name, epochs, self.task, self.site_mains_freq(),
                          info=self.dataset_info(ids))

    def dataset_info(self, subjects: Sequence[str] | None = None) -> dict[str, Any]:
        """Provenance for ``EEGDataset.info``: the config and the ground truth as dicts."""
        return {
            "simulated": self.config.model_dump(mode="json"),
            "ground_truth": self.ground_truth(subjects).to_dict(),
        }


@lru_cache(maxsize=1)
def _montage_cached() -> mne.channels.DigMontage:
    return make_montage("standard_1005")


def _montage() -> mne.channels.DigMontage:
    return _montage_cached().copy()


# =========================================================================== API
@overload
def simulate(
    config: SimulatedConfig | Mapping[str, Any], *, return_ground_truth: Literal[True] = ...,
    progress: bool = ...,
) -> tuple[EEGDataset, GroundTruth]: ...
@overload
def simulate(
    config: SimulatedConfig | Mapping[str, Any], *, return_ground_truth: Literal[False],
    progress: bool = ...,
) -> EEGDataset: ...
def simulate(
    config: SimulatedConfig | Mapping[str, Any], *, return_ground_truth: bool = True,
    progress: bool = False,
) -> tuple[EEGDataset, GroundTruth] | EEGDataset:
    """Simulate a multi-subject data set with known neural correlates.

    Parameters
    ----------
    config : SimulatedConfig | Mapping
        The ``dataset`` section (``kind: simulated``), or a mapping validated into one.
    return_ground_truth : bool
        Return ``(dataset, ground_truth)``; False returns only the dataset (the ground
        truth is in ``dataset.info['ground_truth']`` either way).
    progress : bool
        Show a progress bar over subjects.

    Returns
    -------
    dataset : EEGDataset
        One :class:`mne.Epochs` per subject (volts, montage, event_id, metadata).
    ground_truth : GroundTruth
        Planted effects, artefacts and per-subject parameters.
    """
    loader = SimulatedLoader(config)
    dataset = loader.load(progress=progress)
    if not return_ground_truth:
        return dataset
    return dataset, GroundTruth.from_dict(dataset.info["ground_truth"])


def baseline_accuracy(
    dataset: EEGDataset,
    band: tuple[float, float] | Sequence[tuple[float, float]],
    *,
    window: tuple[float, float] | None = None,
    per_subject: bool = False,
) -> float | dict[str, float]:
    """Leave-one-subject-out accuracy of log band power + logistic regression.

    Features are the log band power of every channel in each band (Welch PSD within
    ``window``, default: the ground truth's effect window if the dataset has one, else the
    whole epoch), minus their mean over channels per trial (removes overall gain), then
    centred and scaled per subject without using labels. A model-free check that the
    class information is there (and at chance when it is not).

    Returns
    -------
    float | dict
        Mean accuracy over held-out subjects, or subject -> accuracy.
    """
    from scipy.signal import welch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    bands = [tuple(band)] if np.isscalar(band[0]) else [tuple(b) for b in band]  # type: ignore[arg-type]
    X, y, groups = dataset.get_data()
    sfreq = dataset.sfreq
    if window is None:
        gt = dataset.info.get("ground_truth")
        window = tuple(gt["time_window"]) if gt else (0.0, X.shape[-1] / sfreq)
    start, stop = (int(round(t * sfreq)) for t in window)
    X = X[..., max(start, 0):min(stop, X.shape[-1])]
    nperseg = min(X.shape[-1], int(sfreq))
    freqs, psd = welch(X, fs=sfreq, nperseg=nperseg, axis=-1)
    feats = []
    for low, high in bands:
        sel = (freqs >= low) & (freqs <= high)
        if not np.any(sel):
            raise ValueError(f"band {low}-{high} Hz holds no frequency bin")
        logp = np.log(np.mean(psd[..., sel], axis=-1))
        feats.append(logp - logp.mean(axis=1, keepdims=True))
    F = np.concatenate(feats, axis=1)
    for g in np.unique(groups):
        rows = groups == g
        F[rows] = (F[rows] - F[rows].mean(0)) / (F[rows].std(0) + 1e-12)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
    scores: dict[str, float] = {}
    for train, test in LeaveOneGroupOut().split(F, y, groups):
        model.fit(F[train], y[train])
        scores[str(groups[test][0])] = float(model.score(F[test], y[test]))
    return scores if per_subject else float(np.mean(list(scores.values())))

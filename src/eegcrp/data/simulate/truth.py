"""Ground truth of a simulated data set: planted effects, artefacts, subject parameters.

:class:`GroundTruth` says what carries the class information (effects: source, channels,
band, time window relative to trial onset, direction per class) and what is artefact, as
plain dataclasses that round-trip through JSON (:meth:`GroundTruth.to_dict`,
:meth:`GroundTruth.from_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["ArtifactTruth", "Contrast", "EffectTruth", "GroundTruth", "SubjectTruth"]


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

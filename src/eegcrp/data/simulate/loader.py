"""The simulator as a loader (``kind: simulated``), :func:`simulate` and a band-power baseline.

Every subject is one continuous recording (see :mod:`.generator`) returned as a
:class:`~eegcrp.data.recording.Recording`, so preprocessing filters it like a real one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

import mne
import numpy as np
import pandas as pd

from ...config import SIMULATED_CLASSES, SimulatedConfig
from ..base import BaseLoader, DataError, EEGDataset, Recording, make_segment
from .forward import (
    CHANNEL_THRESHOLD,
    FORWARD_MODEL,
    SOURCE_INDEX,
    SOURCES,
    montage,
    nominal_patterns,
    resolve_channels,
)
from .generator import SimulatedSubject, simulate_recording
from .model import (
    ARTIFACT_DESCRIPTION,
    ARTIFACTS,
    BANDS,
    DESCRIPTIONS,
    EFFECTS,
    RHYTHM_INDEX,
    RHYTHMS,
    SubjectParams,
    rates,
    seed_of,
    subject_params,
    weak_subjects,
)
from .truth import ArtifactTruth, Contrast, EffectTruth, GroundTruth

__all__ = ["SimulatedLoader", "baseline_accuracy", "simulate"]

logger = logging.getLogger(__name__)


class SimulatedLoader(BaseLoader):
    """Simulated subjects as a loader (``kind: simulated``); see the module docstring.

    Subject ids are ``S01`` .. ``S<n_subjects>``; ``config.subjects`` picks numbers.
    Every subject is generated on its own from ``(config.seed, number)``; a None seed is
    the study's seed (resolved by :class:`~eegcrp.config.StudyConfig`), 0 outside a study.
    """

    name = "simulated"
    task = "motor_imagery"  # replaced by config.paradigm per instance
    default_folder = "simulated"
    mains_freq = 50.0
    trial_length_hint = "raise dataset.trial_duration"

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
        self._weak = weak_subjects(config)
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
        children = np.random.SeedSequence([seed_of(self.config), number]).spawn(9)
        gens = [np.random.default_rng(c) for c in children]
        return gens[0], gens[1:]

    def _params(self, number: int, rng: np.random.Generator | None = None) -> SubjectParams:
        if rng is None:
            rng = self._streams(number)[0]
        return subject_params(
            self.config, number, self._subject_id(number), number in self._weak,
            self.ch_names, rng,
        )

    def simulate_subject(self, subject: str) -> SimulatedSubject:
        """One subject's continuous recording as arrays (volts, trial starts, labels, counts)."""
        number = self._number(subject)
        param_rng, streams = self._streams(number)
        params = self._params(number, param_rng)
        return simulate_recording(self.config, params, streams, self.site_mains_freq())

    def load_recording(self, subject: str) -> Recording:
        sim = self.simulate_subject(subject)
        info = mne.create_info(self.ch_names, float(self.config.sfreq), "eeg")
        raw = make_segment(mne.io.RawArray(sim.data, info, copy=None, verbose="error"),
                           montage=montage(), line_freq=self.site_mains_freq(),
                           where="simulated")
        trials = pd.DataFrame({"segment": 0, "onset": sim.starts / float(self.config.sfreq),
                               "label": sim.labels}).join(sim.counts)
        return Recording(subject, [raw], trials, float(self.config.trial_duration),
                         self.event_id, source="simulated").validate()

    def ground_truth(self, subjects: Sequence[str] | None = None) -> GroundTruth:
        """The planted effects and artefacts (and the parameters of ``subjects``)."""
        cfg = self.config
        ids = self.subject_ids() if subjects is None else list(subjects)
        nominal = nominal_patterns(self.ch_names)
        window = [float(cfg.effect_window[0]), float(cfg.effect_window[1])]

        def spatial(source: str) -> tuple[list[str], str, list[float]]:
            pattern = nominal[:, SOURCE_INDEX[source]]
            chans = [c for c, v in zip(self.ch_names, pattern, strict=True)
                     if abs(v) >= CHANNEL_THRESHOLD]
            peak = self.ch_names[int(np.argmax(np.abs(pattern)))]
            return chans, peak, [round(float(v), 6) for v in pattern]

        effects = []
        for eff in EFFECTS[cfg.paradigm]:
            rhythm = RHYTHMS[RHYTHM_INDEX[eff.rhythm]]
            source = SOURCES[SOURCE_INDEX[rhythm.source]]
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
                band=list(BANDS[rhythm.rhythm][0]), time_window=window, channels=chans,
                peak_channel=peak, pattern=pattern, power_ratio=power, higher_in=higher,
                sign=sign,
            ))
        contrast = Contrast(list(self.classes), DESCRIPTIONS[cfg.paradigm], window, effects)

        artifacts = []
        conf = cfg.confound
        for kind, spec in ARTIFACTS.items():
            rate_hz = rates(cfg, kind, self.classes)
            for name in spec["sources"]:
                source = SOURCES[SOURCE_INDEX[name]]
                chans, peak, pattern = spatial(name)
                hit = conf is not None and conf.artifact == kind
                low, high = spec["band"]
                artifacts.append(ArtifactTruth(
                    name=name, kind=kind, description=ARTIFACT_DESCRIPTION[kind],
                    region=source.region, band=[low, high if high else cfg.sfreq / 2],
                    amplitude_uv=spec["amplitude"], rate_hz=rate_hz, channels=chans,
                    peak_channel=peak, pattern=pattern,
                    confounded_with=conf.class_ if hit and conf else None,
                    confound_strength=float(conf.strength) if hit and conf else 0.0,
                ))
        return GroundTruth(
            paradigm=cfg.paradigm, classes=list(self.classes), event_id=dict(self.event_id),
            ch_names=list(self.ch_names), sfreq=float(cfg.sfreq),
            trial_duration=float(cfg.trial_duration), time_window=window,
            effect_size=float(cfg.effect_size), snr=float(cfg.snr),
            mains_freq=self.site_mains_freq(), forward_model=FORWARD_MODEL,
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
        One :class:`mne.Epochs` of raw (unfiltered) trials per subject (volts, montage,
        event_id, metadata); :func:`eegcrp.preprocessing.prepare` filters the continuous
        recordings instead.
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

"""Confound controls: retrain the study with one change and see how much score survives.

A decoder can be right for the wrong reason: eye movements that differ between classes,
muscle tension, the cue's evoked response. A control removes one such candidate and
retrains the whole study; the paired change of each held-out subject's score says how much
of the decoding rested on it.

=========  ===========================================================================
control    what it removes (the setting it overrides)
=========  ===========================================================================
band       everything outside a band-pass (``preprocessing.l_freq``/``h_freq``):
           motor imagery keeps 8-30 Hz (mu and beta, where imagery changes the
           sensorimotor rhythms); the other families keep 4-30 Hz (no delta, where
           blinks and saccades lie, no gamma, where muscle lies)
channels   the frontal-edge channels (``preprocessing.drop_channels``), where blinks
           and saccades are largest, or a named set
time       windows starting within ``controls.min_onset`` s of the cue
           (``preprocessing.min_window_onset``): the cue's evoked response and the eye
           movements it triggers. Motor imagery only by default: its trials are cued;
           eegmat-like recordings are continuous blocks without a cue
=========  ===========================================================================

The comparison (:func:`compare`) is paired over held-out subjects: each subject's score
under the control (mean over its repetitions) minus its score in the study (mean over the
study's repetitions), a two-sided paired t-test, and the share of the above-chance score
the control removes. A control that removes at least ``controls.confound_share`` of it
names a likely confound when the change is significant, a possible one when it is not (too
few subjects to tell); otherwise it lowers or raises the score, or changes it not
significantly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .config import StudyConfig, apply_overrides, load_config
from .errors import ConfigError
from .evidence import t_interval

__all__ = ["FAMILY_BANDS", "FAMILY_CONTROLS", "FRONTAL_EDGE", "Control", "compare",
           "control_config", "declared_controls", "frontal_edge"]

#: Controls run by default per task family (``dataset.task``).
FAMILY_CONTROLS = {"motor_imagery": ("band", "channels", "time"),
                   "auditory_attention": ("band", "channels"),
                   "internal_attention": ("band", "channels")}
#: The band control's band-pass per task family (Hz).
FAMILY_BANDS = {"motor_imagery": (8.0, 30.0), "auditory_attention": (4.0, 30.0),
                "internal_attention": (4.0, 30.0)}
#: Channel-name prefixes at the frontal edge of the montage, where eye movements and blinks
#: are largest (10-05 names, case-insensitive).
FRONTAL_EDGE = ("fp", "af", "f7", "f8", "f9", "f10", "ft9", "ft10", "nz")


def frontal_edge(ch_names: list[str]) -> list[str]:
    """The channels of ``ch_names`` at the frontal edge (:data:`FRONTAL_EDGE`)."""
    return [c for c in ch_names if c.lower().startswith(FRONTAL_EDGE)]


@dataclass(frozen=True)
class Control:
    """One declared control: its name, what it removes, the settings it overrides, and why
    it is not run on this study (``skip``: it would change nothing), if so."""

    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    skip: str = ""

    def set_options(self) -> str:
        """The ``--set`` options that rerun a study under this control."""
        return " ".join(f"--set {k}={_value(v)}" for k, v in self.overrides.items())


def declared_controls(config: StudyConfig, ch_names: list[str], task: str | None = None
                      ) -> list[Control]:
    """The controls ``config`` declares for data with channels ``ch_names`` of task family
    ``task`` (the prepared dataset's; default ``dataset.task``).

    Raises
    ------
    ConfigError
        A band above the Nyquist rate, or named channels the data do not have.
    """
    cc = config.controls
    task = task or getattr(config.dataset, "task", None) or "internal_attention"
    kinds = cc.run if cc.run is not None else FAMILY_CONTROLS.get(task, ("band", "channels"))
    out = []
    for kind in kinds:
        if kind == "band":
            lo, hi = cc.band or FAMILY_BANDS.get(task, (4.0, 30.0))
            nyquist = config.preprocessing.sfreq / 2
            if hi >= nyquist:
                raise ConfigError(f"controls.band [{lo:g}, {hi:g}] reaches the Nyquist rate "
                                  f"({nyquist:g} Hz at preprocessing.sfreq "
                                  f"{config.preprocessing.sfreq:g}); lower its upper edge")
            pre = config.preprocessing
            inside = (pre.l_freq or 0.0) >= lo and pre.h_freq is not None and pre.h_freq <= hi
            out.append(Control("band", f"{lo:g}-{hi:g} Hz only",
                               {"preprocessing.l_freq": lo, "preprocessing.h_freq": hi},
                               skip=f"the study is band-passed to {pre.l_freq or 0:g}-"
                                    f"{pre.h_freq:g} Hz already" if inside else ""))
        elif kind == "channels":
            names = frontal_edge(ch_names) if cc.channels == "frontal_edge" else cc.channels
            missing = sorted(set(names) - set(ch_names))
            if missing:
                raise ConfigError(f"controls.channels names {missing}, which the data do not "
                                  f"have; channels: {ch_names}")
            dropped = sorted(set(config.preprocessing.drop_channels) | set(names))
            skip = ("the data have no frontal-edge channel" if not names else
                    "it would remove every channel" if len(names) >= len(ch_names) else "")
            out.append(Control("channels", "without " + (", ".join(names) or "none"),
                               {"preprocessing.drop_channels": dropped}, skip=skip))
        elif kind == "time":
            tmin = float(getattr(config.dataset, "tmin", 0.0) or 0.0)
            onset = max(0.0, cc.min_onset - tmin)
            out.append(Control("time", f"windows from {cc.min_onset:g} s after the cue",
                               {"preprocessing.min_window_onset": onset},
                               skip="" if onset > config.preprocessing.min_window_onset
                               else "the study's windows start that late already"))
    return out


def control_config(config: StudyConfig, control: Control) -> StudyConfig:
    """The study under ``control``: its run folder is ``<output_dir>/controls/<name>``, its
    cache the study's, its repetitions ``controls.repetitions``."""
    raw = config.model_dump(mode="json")
    raw = apply_overrides(raw, [f"{k}={_value(v)}" for k, v in control.overrides.items()])
    raw["output_dir"] = str(config.output_dir / "controls" / control.name)
    raw["cache_dir"] = str(config.resolved_cache_dir())
    raw["training"]["repetitions"] = config.controls.repetitions
    raw["controls"]["enabled"] = False
    return load_config(raw)


def _value(value: Any) -> str:
    """An override value as ``--set`` takes it (parsed as YAML: ``[F7,F8]`` is a list of
    names), with no space for the shell to split."""
    return "[" + ",".join(str(x) for x in value) + "]" if isinstance(value, list) else str(value)


def compare(study: pd.Series, control: pd.Series, *, chance: float, alpha: float = 0.05,
            confound_share: float = 0.5, ci: float = 0.95) -> tuple[pd.DataFrame, dict]:
    """Each held-out subject's score under a control against the study's, paired.

    Parameters
    ----------
    study, control : Series
        Held-out subject -> score (mean over repetitions).
    chance : float
        The score of guessing.

    Returns
    -------
    per_subject : DataFrame
        ``subject``, ``study_score``, ``control_score``, ``change``.
    summary : dict
        ``study_score``, ``control_score`` (means over subjects), ``change`` with its
        interval, ``t``/``p`` (two-sided paired t-test),
        ``share_removed`` of the above-chance score, ``verdict``, ``likely_confound``
        (most of it removed, significantly), ``possible_confound`` (not significantly).
    """
    common = sorted(set(study.index) & set(control.index))
    a, b = study.reindex(common).to_numpy(float), control.reindex(common).to_numpy(float)
    diff = b - a
    per = pd.DataFrame({"subject": common, "study_score": a, "control_score": b,
                        "change": diff})
    lo, hi = t_interval(diff, ci)
    if len(common) >= 3 and diff.std(ddof=1) > 0:
        res = stats.ttest_rel(b, a)
        t, p = float(res.statistic), float(res.pvalue)
    else:
        t, p = float("nan"), float("nan")
    above = a.mean() - chance if len(a) else float("nan")
    share = float((a.mean() - b.mean()) / above) if above > 0 else float("nan")
    most = share >= confound_share  # False for NaN (no above-chance score to remove)
    if p != p:
        verdict = "not testable"
    elif p < alpha and diff.mean() > 0:
        verdict = "raises the score"
    elif p < alpha:
        verdict = "removes most of the above-chance score" if most else "lowers the score"
    elif most:
        verdict = "removes most of the above-chance score, not significantly"
    else:
        verdict = "no significant change"
    summary = {"n_subjects": len(common),
               "study_score": float(np.mean(a)) if len(a) else float("nan"),
               "control_score": float(np.mean(b)) if len(b) else float("nan"),
               "change": float(diff.mean()) if len(diff) else float("nan"), "ci_low": lo,
               "ci_high": hi, "t": t, "p": p, "share_removed": share, "verdict": verdict,
               "likely_confound": bool(most and p < alpha),
               "possible_confound": bool(most and not p < alpha)}
    return per, summary

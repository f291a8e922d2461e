"""Config section of the ``controls`` stage: the study retrained under declared controls."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Section as _Section

__all__ = ["CONTROL_KINDS", "ControlsConfig"]

#: The controls a study can be retrained under (:mod:`eegcrp.controls`).
CONTROL_KINDS = ("band", "channels", "time")


class ControlsConfig(_Section):
    """Confound controls (see :mod:`eegcrp.controls` for each and its default per task).

    Each control retrains the whole study (prepare and train, ``repetitions`` times) with
    one change, and compares every held-out subject's score with the study's own (paired
    t-test over subjects). Off by default: each control costs a training run of the study.
    """

    enabled: bool = Field(
        False, description="Run the controls (`eegcrp run --controls` sets this for one run).",
    )
    run: list[Literal["band", "channels", "time"]] | None = Field(
        None, description="Controls to run; null = those of the dataset's task family "
        "(motor imagery: band, channels, time; the others: band, channels).",
    )
    band: tuple[float, float] | None = Field(
        None, description="Band-pass (Hz) of the band control; null = the task family's "
        "(motor imagery 8-30 Hz: mu and beta; internal attention 4-30 Hz; auditory "
        "attention 4-30 Hz: without delta, where eye movements lie).",
    )
    channels: Literal["frontal_edge"] | list[str] = Field(
        "frontal_edge", description="Channels the channel control removes: 'frontal_edge' "
        "(Fp*, AF*, F7/F8/F9/F10, FT9/FT10, Nz present in the data: where blinks and "
        "saccades are largest) or a list of names.",
    )
    min_onset: float = Field(
        1.0, ge=0, description="Time control: only windows starting at least this many "
        "seconds after the cue (dataset.tmin is accounted for): the cue's evoked response "
        "and the eye movements it triggers fall in the first second.",
    )
    repetitions: int = Field(
        1, ge=1, description="Training repetitions of each control (compared with the mean "
        "over the study's own repetitions of each held-out subject).",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Level of the paired test.")
    confound_share: float = Field(
        0.5, gt=0, le=1, description="A control that removes at least this share of the "
        "above-chance score (and does so significantly) names a likely confound.",
    )

    @field_validator("band")
    @classmethod
    def _band(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] < value[1]:
            raise ValueError(f"band {list(value)} must satisfy 0 <= low < high (Hz), e.g. "
                             "[8, 30]")
        return value

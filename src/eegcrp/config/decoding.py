"""Config section of the ``decoding`` stage: repetition ensembles and same-fold baselines."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Section

__all__ = ["BASELINES", "DecodingConfig"]

#: Non-deep baselines scored on the training folds (:mod:`eegcrp.training.baselines`).
BASELINES = ("logbp+lr", "ts+lr")


class DecodingConfig(Section):
    """What EEGNet's held-out scores are compared with."""

    baselines: list[Literal["logbp+lr", "ts+lr"]] = Field(
        default_factory=lambda: list(BASELINES),
        description="Baselines trained on exactly the training folds' subjects and scored on "
        "the same held-out windows: log band power 4-30 Hz + logistic regression, tangent "
        "space of re-centred covariances + logistic regression (pyriemann).",
    )
    C: float = Field(0.1, gt=0, description="Inverse L2 strength of the baselines' "
                     "logistic regression.")
    headline: Literal["single", "ensemble"] = Field(
        "single", description="Which EEGNet score the summary leads with: the single models' "
        "score averaged over repetitions (the models the explanations explain) or the "
        "repetition ensemble's (probabilities averaged over a subject's R models).",
    )

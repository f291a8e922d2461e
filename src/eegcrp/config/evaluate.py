"""Config section of the explanation-quality stage (``evaluate``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .stages import ParallelSection

__all__ = ["EVALUATE_COMPOSITES", "EvaluateConfig"]

#: LRP composites the quality checks can compare (``Epsilon``: epsilon everywhere, which
#: with biases zeroed conserves relevance by construction on EEGNet).
EVALUATE_COMPOSITES = ("EpsilonAlpha2Beta1", "EpsilonPlus", "EpsilonPlusFlat", "EpsilonGammaBox",
                       "Epsilon")


class EvaluateConfig(ParallelSection):
    """Explanation quality: faithfulness, conservation, randomisation, ground truth."""

    composites: list[str] | None = Field(
        None, description="LRP composites compared on the same windows; null = the explain "
        "composite, EpsilonPlus, EpsilonAlpha2Beta1 and Epsilon.",
    )
    baselines: list[Literal["gradient_x_input", "integrated_gradients"]] = Field(
        default_factory=lambda: ["gradient_x_input", "integrated_gradients"],
        description="Gradient attribution baselines (zennit attributors).",
    )
    domains: list[Literal["channels", "bands", "time"]] = Field(
        default_factory=lambda: ["channels", "bands", "time"],
        description="Perturbation domains (bands: explain.bands).",
    )
    channel_removal: Literal["mean", "neighbours"] = Field(
        "mean", description="Replace a removed channel by its window mean or by the average "
        "of its 4 nearest neighbours (needs positions).",
    )
    n_segments: int = Field(8, ge=2, description="Time segments of the time domain.")
    max_steps: int = Field(10, ge=2, description="Perturbation steps measured per curve.")
    n_random: int = Field(3, ge=1, description="Random removal orders (the reference).")
    max_windows: int = Field(32, ge=2, description="Held-out windows per fold (stratified).")
    repetitions: int | None = Field(
        1, ge=1, description="Training repetitions whose folds are evaluated (the first "
        "ones); null = all. One gives every held-out subject one model, which the "
        "per-subject checks need; each further repetition costs as much again and measures "
        "the same explanation method on a model of the same data.",
    )
    max_folds: int | None = Field(
        None, ge=1, description="Folds evaluated (first in repetition, subject order, after "
        "`repetitions`); null = every such fold.",
    )
    ig_steps: int = Field(16, ge=2, description="Integrated-gradients path steps.")
    conservation_tolerance: float = Field(
        0.05, gt=0, description="A heatmap whose sum is off its start relevance by more than "
        "this fraction is flagged.",
    )
    randomisation_folds: int = Field(
        1, ge=0, description="Folds that get the cascading model-parameter randomisation.",
    )
    shuffled_label_folds: int = Field(
        1, ge=0, description="Folds retrained on shuffled labels for the data-randomisation "
        "check (costs one training run each).",
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="Level of the faithfulness test (relevance-ordered "
        "against random removal, paired over held-out subjects).",
    )
    min_effect: float = Field(
        0.5, ge=0, description="Smallest effect size d_z (mean over subjects of the AOPC "
        "difference / its SD) called faithful; a significant smaller one is 'weakly "
        "faithful'. 0.5 is the conventional medium effect.",
    )
    seed: int | None = Field(None, ge=0, description="null = the study's seed.")

    @field_validator("composites")
    @classmethod
    def _composites(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            bad = [c for c in value if c not in EVALUATE_COMPOSITES]
            if bad or not value:
                raise ValueError(f"unknown composite(s) {bad}; use some of "
                                 f"{list(EVALUATE_COMPOSITES)}")
        return value

    def resolved_composites(self, explain_composite: str) -> list[str]:
        """The composites to compare (the explain composite first)."""
        chosen = self.composites or [explain_composite, "EpsilonPlus", "EpsilonAlpha2Beta1",
                                     "Epsilon"]
        return list(dict.fromkeys(chosen))

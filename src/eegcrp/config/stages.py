"""Config sections of the analysis stages (model, training, explain)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Section as _Section

__all__ = [
    "DEFAULT_BANDS",
    "EEGNET_CONV_LAYERS",
    "ExplainConfig",
    "ModelConfig",
    "ParallelSection",
    "TrainingConfig",
]

#: The conv layers of EEGNet (:mod:`eegcrp.models`), any of which can be the concept layer.
EEGNET_CONV_LAYERS = ("b1_conv1", "b1_conv2", "b2_conv1", "b2_conv2")

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class ParallelSection(_Section):
    """Where a stage's independent folds run: processes, a Dask cluster or Ray; CPU or CUDA."""

    n_jobs: int = Field(-1, description="Folds run in parallel; -1 = one per CPU core.")
    backend: Literal["loky", "dask", "ray"] = Field(
        "loky", description="joblib backend for n_jobs != 1 (dask/ray need their extras)."
    )
    dask_address: str | None = Field(
        None, description="Scheduler address for backend dask; null = start a LocalCluster."
    )
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu' or 'cuda[:i]'.")
    threads: int | None = Field(
        1, ge=1, description="torch/BLAS threads per task (1: fastest per core and robust on "
        "a busy machine); null = CPU cores // parallel tasks.",
    )

    @field_validator("n_jobs")
    @classmethod
    def _n_jobs(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError(
                f"n_jobs is {value}; use a positive number of parallel workers or -1 for one "
                "per CPU core"
            )
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(
                f"unknown device {value!r}; use 'auto' (CUDA when present), 'cpu', 'cuda' or "
                "'cuda:<index>'"
            )
        return value


# --- ModelConfig / TrainingConfig: owned by eegcrp.models / eegcrp.training ------------
class ModelConfig(_Section):
    """EEGNet hyper-parameters (see :mod:`eegcrp.models`)."""

    variant: Literal["eegnet", "thesis"] = Field(
        "eegnet",
        description="'eegnet' = EEGNet as published; 'thesis' = the thesis model, defects "
        "included (no ELU after block 2, renorm in forward).",
    )
    F1: int = Field(8, ge=1, description="Temporal filters.")
    D: int = Field(2, ge=1, description="Spatial filters per temporal filter.")
    F2: int = Field(16, ge=1, description="Pointwise filters (the concepts CRP explains).")
    dropout: float = Field(0.25, ge=0, lt=1)
    kernel_length: int | None = Field(
        None, ge=1, description="First (temporal) kernel in samples; null = sfreq / 2."
    )
    separable_kernel_length: int = Field(
        16, ge=1, description="Depthwise temporal kernel of block 2 (thesis: always 16)."
    )


class TrainingConfig(ParallelSection):
    """Leave-one-subject-out training (see :mod:`eegcrp.training.loso`)."""

    repetitions: int = Field(
        5, ge=1, description="Times the whole LOSO is repeated (5: from 5 on, the stable "
        "concepts of EEGMMIDB no longer changed with R; BENCHMARKS.md section 12).")
    max_epochs: int = Field(
        200, ge=1, description="Epoch limit (the thesis protocol always trains this many)."
    )
    min_epochs: int = Field(
        20, ge=1, description="Epochs before early stopping may pick or stop (a validation "
        "score of the first epochs is mostly noise: with 1 validation subject, eegmat folds "
        "stopped at epoch 2-14 and 14 of 72 predicted one class for every window); at most "
        "max_epochs.",
    )
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    monitor: Literal["val_loss", "val_balanced_accuracy", "val_roc_auc", "val_accuracy"] = Field(
        "val_balanced_accuracy",
        description="Validation score for early stopping and the restored best epoch: the "
        "class-weighted loss, the balanced accuracy (mean recall over classes; ties broken by "
        "the lower loss) or the ROC AUC (one-vs-rest for more classes). 'val_accuracy' is the "
        "former name of val_balanced_accuracy.",
    )
    patience: int = Field(
        20, ge=1, description="Stop after this many epochs without a better validation score."
    )
    validation_subjects: int | float = Field(
        0.2, ge=0, description="Training subjects held out per fold for model selection: a "
        "count, or a fraction in (0, 1) of the training subjects (at least one); 0 = none.",
    )
    model_selection: Literal["early_stopping", "inner_cv"] = Field(
        "early_stopping",
        description="'early_stopping': stop on the validation subjects and restore the best "
        "epoch; 'inner_cv': no early stopping, train for a fixed epoch count chosen by an "
        "inner leave-subjects-out loop on the training subjects only.",
    )
    inner_folds: int = Field(
        3, ge=2, description="Groups of training subjects of the inner loop (inner_cv)."
    )
    alignment: Literal["none", "euclidean", "standardize"] = Field(
        "none",
        description="Per-subject alignment before the per-window z-score: 'euclidean' whitens "
        "each subject by the inverse square root of its mean spatial covariance (He & Wu "
        "2019), 'standardize' scales each channel by its standard deviation; both use the "
        "held-out subject's own unlabelled windows (transductive).",
    )
    protocol: Literal["default", "thesis"] = Field(
        "default",
        description="'thesis' = fixed max_epochs, no validation, unshuffled, no class weights.",
    )
    engine: Literal["fast", "reference"] = Field(
        "fast",
        description="How EEGNet is computed in training and eval-mode forwards: 'fast' (the "
        "channels projected first, batch statistics from input moments; equal to the "
        "reference to rounding, eegcrp.training.engine) or 'reference' (the Sequential's "
        "modules). The thesis variant always uses 'reference'.",
    )
    seed: int | None = Field(
        None, ge=0, description="Seed of the folds' splits, weights and batches; null = the "
        "study's seed.",
    )

    @field_validator("monitor")
    @classmethod
    def _monitor(cls, value: str) -> str:
        return "val_balanced_accuracy" if value == "val_accuracy" else value

    @field_validator("validation_subjects")
    @classmethod
    def _validation(cls, value: int | float) -> int | float:
        if isinstance(value, float) and not value.is_integer() and not 0 < value < 1:
            raise ValueError(
                f"validation_subjects {value} is neither a count nor a fraction in (0, 1); "
                "e.g. 2 (subjects) or 0.25 (a quarter of the training subjects)"
            )
        return int(value) if float(value).is_integer() else value

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        if self.model_selection == "inner_cv" and self.protocol == "thesis":
            raise ValueError("model_selection 'inner_cv' does not apply to protocol 'thesis' "
                             "(fixed epochs, no validation); use protocol 'default'")
        return self

    def n_validation(self, n_training: int) -> int:
        """Validation subjects for a fold with ``n_training`` subjects besides the test one."""
        if self.protocol == "thesis" or not self.validation_subjects:
            return 0
        if isinstance(self.validation_subjects, float):
            return max(1, int(round(self.validation_subjects * n_training)))
        return int(self.validation_subjects)
# --- end ModelConfig / TrainingConfig -------------------------------------------------


# --- ExplainConfig: owned by eegcrp.stages.explain and eegcrp.relevance ------------
#: Canonical EEG bands in Hz, each ``[low, high)`` (the thesis' bands; delta starts at the
#: 1 Hz high-pass). The one definition used by the config, spectral analysis and reports.
DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "beta": (12.0, 30.0),
    "gamma": (30.0, 60.0),
}


class ExplainConfig(ParallelSection):
    """Concept relevance (CRP) of every fold model (see :mod:`eegcrp.stages.explain`)."""

    layer: str = Field(
        "b2_conv2",
        description=f"Conv layer whose filters are the concepts: {', '.join(EEGNET_CONV_LAYERS)}.",
    )
    init: Literal["logit", "contrast"] = Field(
        "logit", description="Where relevance starts: the explained class's logit (thesis) or "
        "its logit minus the mean of the other logits (evidence against the other classes).",
    )
    composite: Literal[
        "EpsilonAlpha2Beta1", "EpsilonPlus", "EpsilonPlusFlat", "EpsilonGammaBox"
    ] = Field(
        "EpsilonAlpha2Beta1",
        description="LRP rule set (zennit); the thesis used EpsilonAlpha2Beta1.",
    )
    first_layer_rule: (
        Literal["flat", "wsquare", "zbox", "epsilon", "zplus", "alpha2beta1", "gamma"] | None
    ) = Field(
        None, description="Rule of the first conv; null = the composite's own (flat shifts "
        "spectral relevance to low frequencies: not a default).",
    )
    zero_bias: bool = Field(
        True, description="Leave biases (incl. merged batch norms) out of the LRP rules so "
        "relevance is conserved; false = keep them (relevance leaks at the biases).",
    )
    selection: Literal["share", "top_k"] = Field(
        "share", description="Relevance maximisation: smallest set holding `share` of a "
        "filter's total absolute relevance (thesis), or the `top_k` windows.",
    )
    share: float = Field(0.2, gt=0, le=1, description="Share for selection: share.")
    top_k: int = Field(20, ge=1, description="Windows per filter and class for selection: top_k.")
    rank_by: Literal["abs", "signed"] = Field(
        "abs", description="Rank by |relevance| (thesis) or by positive relevance only.",
    )
    select_from: Literal["test", "train"] = Field(
        "test", description="Windows of the held-out subject or of the fold's training subjects.",
    )
    by_class: bool = Field(
        True, description="Explain class c on windows of true class c only (thesis).",
    )
    correctness: Literal["all", "correct", "incorrect"] = Field(
        "all", description="Restrict the candidates to (in)correctly classified windows.",
    )
    batch_size: int = Field(
        64, ge=1, description="(window, class, filter) rows per forward/backward pass; on CPU "
        "smaller batches of large models run faster (less memory traffic)."
    )
    bands: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(DEFAULT_BANDS),
        description="Frequency bands in Hz, [low, high) each.",
    )
    conservation_tolerance: float = Field(
        0.05, gt=0, description="A selected heatmap whose sum differs from its filter's "
        "relevance by more than this fraction is flagged in the store and the report.",
    )
    short_time: bool = Field(False, description="Also store time x frequency relevance.")
    short_time_window: float = Field(
        1.0, gt=0, description="Segment length of the short-time DFT in seconds (hop: half)."
    )

    @field_validator("layer")
    @classmethod
    def _layer(cls, value: str) -> str:
        if value not in EEGNET_CONV_LAYERS:
            raise ValueError(
                f"{value!r} is not a conv layer of EEGNet; use one of {list(EEGNET_CONV_LAYERS)} "
                "(b2_conv2, the pointwise filters of block 2, is the thesis' concept layer)"
            )
        return value

    @field_validator("bands")
    @classmethod
    def _bands(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        if not value:
            raise ValueError("bands is empty; name at least one band, e.g. {alpha: [8, 12]}")
        for name, (low, high) in value.items():
            if not 0 <= low < high:
                raise ValueError(f"band {name!r} = [{low}, {high}] must satisfy 0 <= low < high")
        return value
# --- end ExplainConfig ----------------------------------------------------------------



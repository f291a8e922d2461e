"""Study configuration: one YAML file validated into typed objects.

A study is described by a single YAML document. :func:`load_config` reads it, applies
``--set KEY=VALUE`` overrides with dotted keys, and validates the result with pydantic.
Unknown keys and bad values raise :class:`ConfigError`, whose message names the key and
the allowed keys or values, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

__all__ = [
    "DEFAULT_BANDS",
    "BCIIV2bConfig",
    "ConfigError",
    "EEGMATConfig",
    "EEGMMIDBConfig",
    "FolderConfig",
    "KULConfig",
    "MOABBConfig",
    "ModelConfig",
    "PreprocessingConfig",
    "SimulatedConfig",
    "StudyConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_hash",
    "data_root",
    "load_config",
]


def data_root() -> Path:
    """Folder holding the real recordings: ``$EEGCRP_DATA`` or ``../shared/data``."""
    return Path(os.environ.get("EEGCRP_DATA", "../shared/data")).expanduser()


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# --------------------------------------------------------------------------- datasets
class _DatasetBase(_Section):
    path: Path | None = Field(
        None, description="Folder with the recordings; default: a folder under $EEGCRP_DATA."
    )
    subjects: list[int] | None = Field(None, description="Subject numbers to load; null = all.")
    mains_freq: float | None = Field(
        None,
        description="Mains frequency in Hz for the notch; null = the recording site's (50/60).",
    )

    def resolved_path(self, default_folder: str) -> Path:
        """The folder to read: the configured path or ``$EEGCRP_DATA/<default_folder>``."""
        return Path(self.path).expanduser() if self.path else data_root() / default_folder


class BCIIV2bConfig(_DatasetBase):
    """BCI Competition IV 2b (Graz), epoched ``.mat`` files ``BxxyyT.mat``."""

    kind: Literal["bciciv2b"] = "bciciv2b"
    sessions: list[str] = Field(
        default_factory=lambda: ["01T", "02T", "03T"],
        description="Session codes (e.g. 01T, 04E) to concatenate per subject.",
    )


class EEGMMIDBConfig(_DatasetBase):
    """PhysioNet EEG Motor Movement/Imagery, EDF runs (imagery runs 4, 8, 12)."""

    kind: Literal["eegmmidb"] = "eegmmidb"
    runs: list[int] = Field(default_factory=lambda: [4, 8, 12])
    tmin: float = 0.0
    tmax: float = 4.0
    download: bool = Field(False, description="Fetch missing runs with MNE's eegbci downloader.")


class EEGMATConfig(_DatasetBase):
    """PhysioNet eegmat: mental arithmetic vs rest (stand-in for internal attention)."""

    kind: Literal["eegmat"] = "eegmat"
    trial_duration: float = Field(
        30.0, gt=0, description="Each recording is cut into trials of this many seconds."
    )
    balance: bool = Field(False, description="Subsample the majority class per subject.")


class KULConfig(_DatasetBase):
    """KU Leuven auditory attention (Das et al.): ``S1.mat`` .. ``S16.mat``."""

    kind: Literal["kul_aad"] = "kul_aad"
    n_trials: int = Field(8, ge=1, description="Use the first n trials (competing talkers).")


class MOABBConfig(_DatasetBase):
    """Any MOABB dataset through a MOABB paradigm (optional extra ``eegcrp[moabb]``)."""

    kind: Literal["moabb"] = "moabb"
    dataset: str = Field(..., description="MOABB dataset class name, e.g. Cho2017.")
    dataset_params: dict[str, Any] = Field(default_factory=dict)
    paradigm: str = Field("LeftRightImagery", description="MOABB paradigm class name.")
    paradigm_params: dict[str, Any] = Field(default_factory=dict)
    montage: str = "standard_1005"
    task: Literal["motor_imagery", "auditory_attention", "internal_attention"] | None = Field(
        None, description="Task family; null = inferred from the paradigm (imagery)."
    )


class FolderConfig(_DatasetBase):
    """In-house recordings in a folder (FIF, EDF/BDF, BrainVision, EEGLAB, XDF)."""

    kind: Literal["folder"] = "folder"
    task: Literal["motor_imagery", "auditory_attention", "internal_attention"] = Field(
        ..., description="Task family of the recordings."
    )
    pattern: str = Field(
        "**/*", description="Glob below path; files of unknown type are ignored."
    )
    subject_regex: str = Field(
        r"sub-([A-Za-z0-9]+)",
        description="Regex on the file path; group 1 is the subject id.",
    )
    events: dict[str, str] = Field(
        ..., description="Marker (annotation description or stim code) -> class name."
    )
    tmin: float = 0.0
    tmax: float = Field(..., description="Window end after each marker, in seconds.")
    montage: str = "standard_1005"
    rename: dict[str, str] = Field(default_factory=dict, description="Channel renames.")
    channels: list[str] | None = Field(None, description="EEG channels to keep; null = all EEG.")
    xdf_eeg_stream: str | None = Field(None, description="XDF: name of the EEG stream.")
    xdf_marker_stream: str | None = Field(None, description="XDF: name of the marker stream.")

    @field_validator("events", mode="before")
    @classmethod
    def _marker_keys(cls, value: Any) -> Any:
        # YAML reads stim codes ``{1: left_hand}`` as integers; markers are compared as text.
        if isinstance(value, Mapping):
            return {str(k): v for k, v in value.items()}
        return value

    @field_validator("events")
    @classmethod
    def _some_events(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("map at least one marker to a class, e.g. {left: left_hand}")
        return value

    @model_validator(mode="after")
    def _window(self) -> FolderConfig:
        if self.tmax <= self.tmin:
            raise ValueError(f"tmax ({self.tmax}) must be larger than tmin ({self.tmin})")
        return self


# --- SimulatedConfig: owned by the simulator (eegcrp.simulate) -----------------------
#: Classes of each simulated paradigm (event codes 1, 2 in this order).
SIMULATED_CLASSES: dict[str, tuple[str, str]] = {
    "motor_imagery": ("left_hand", "right_hand"),
    "auditory_attention": ("left_ear", "right_ear"),
    "internal_attention": ("internal", "external"),
}
#: Channel presets of the simulator (the lists live in :mod:`eegcrp.simulate`).
SIMULATED_CHANNEL_PRESETS = ("standard_64", "actichamp_32", "10-20_19", "c3cz_c4")


class SimulatedConfound(_Section):
    """An artefact whose rate depends on the class, so a model can cheat through it."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, validate_by_name=True,
        validate_by_alias=True, serialize_by_alias=True,
    )

    artifact: Literal["blink", "saccade", "muscle"] = Field(
        ..., description="Artefact made class-dependent: blink, saccade or muscle."
    )
    class_: str = Field(
        ..., alias="class", description="Class (of the paradigm) with the extra artefacts."
    )
    strength: float = Field(
        2.0, ge=0,
        description="Artefact rate in trials of `class` is multiplied by 1 + strength.",
    )


class SimulatedConfig(_DatasetBase):
    """Simulated multi-subject EEG with known neural correlates (see :mod:`eegcrp.simulate`)."""

    kind: Literal["simulated"] = "simulated"
    paradigm: Literal["motor_imagery", "auditory_attention", "internal_attention"] = (
        "motor_imagery"
    )
    n_subjects: int = Field(10, ge=1, le=999)
    n_trials: int = Field(60, ge=2, description="Trials per subject (balanced classes).")
    seed: int = Field(0, ge=0, description="Master seed; subject k uses (seed, k).")
    channels: str | list[str] = Field(
        "standard_64",
        description="Preset (standard_64, actichamp_32, 10-20_19, c3cz_c4) or a list of "
        "10-05 electrode names.",
    )
    sfreq: float = Field(256.0, ge=64, le=2048, description="Sampling frequency in Hz.")
    trial_duration: float = Field(4.0, gt=0, le=60, description="Trial length in seconds.")
    effect_window: tuple[float, float] = Field(
        (0.5, 3.5), description="Start and end (s from trial onset) of the task effect."
    )
    effect_size: float = Field(
        1.0, ge=0, le=20,
        description="Relative band-power modulation: power x (1 + effect_size) (or divided "
        "by it for desynchronisation) in the effect window; 0 = no effect at all.",
    )
    snr: float = Field(
        0.6, gt=0, le=20,
        description="RMS of each brain rhythm (mu, beta, alpha, theta) at its peak channel "
        "relative to the RMS of the 1/f background, before task modulation.",
    )
    weak_fraction: float = Field(
        0.2, ge=0, le=1,
        description="Fraction of subjects whose effect is weak or absent (0-25 % strength).",
    )
    variability: float = Field(
        1.0, ge=0, le=3,
        description="Scale of between-subject variability (effect size, peak frequencies, "
        "source positions/orientations, amplitudes); 0 = identical subjects up to noise.",
    )
    blink_rate: float = Field(0.25, ge=0, le=5, description="Eye blinks per second.")
    saccade_rate: float = Field(0.15, ge=0, le=5, description="Horizontal saccades per second.")
    muscle_rate: float = Field(0.1, ge=0, le=5, description="Temporal muscle bursts per second.")
    confound: SimulatedConfound | None = Field(
        None, description="Make an artefact class-dependent: {artifact, class, strength}."
    )
    line_noise_uv: float = Field(
        2.0, ge=0, description="Mains interference amplitude in µV (at mains_freq, default 50)."
    )
    sensor_noise_uv: float = Field(1.0, ge=0, description="White sensor noise RMS in µV.")

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str) and value not in SIMULATED_CHANNEL_PRESETS:
            raise ValueError(
                f"unknown channel preset {value!r}; use one of {list(SIMULATED_CHANNEL_PRESETS)}"
                " or a list of 10-05 electrode names"
            )
        if isinstance(value, list) and not value:
            raise ValueError("the channel list is empty; name at least one electrode")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SimulatedConfig:
        start, end = self.effect_window
        if not 0 <= start < end <= self.trial_duration:
            raise ValueError(
                f"effect_window {list(self.effect_window)} must satisfy 0 <= start < end <= "
                f"trial_duration ({self.trial_duration} s)"
            )
        classes = SIMULATED_CLASSES[self.paradigm]
        if self.confound is not None and self.confound.class_ not in classes:
            raise ValueError(
                f"confound class {self.confound.class_!r} is not a class of paradigm "
                f"{self.paradigm}; use one of {list(classes)}"
            )
        if self.subjects is not None:
            bad = sorted(s for s in self.subjects if not 1 <= s <= self.n_subjects)
            if bad:
                raise ValueError(
                    f"subjects {bad} are outside 1..n_subjects ({self.n_subjects}); pick "
                    "numbers in that range or raise n_subjects"
                )
        return self
# --- end SimulatedConfig ---------------------------------------------------------------


DatasetConfig = Annotated[
    BCIIV2bConfig
    | EEGMMIDBConfig
    | EEGMATConfig
    | KULConfig
    | MOABBConfig
    | FolderConfig
    | SimulatedConfig,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- preprocessing
class PreprocessingConfig(_Section):
    """Filtering, resampling, windowing and referencing (defaults follow the thesis)."""

    l_freq: float | None = Field(1.0, ge=0, description="High-pass edge in Hz; null = none.")
    h_freq: float | None = Field(60.0, gt=0, description="Low-pass edge in Hz; null = none.")
    notch: Literal["auto", "none"] | float = Field(
        "auto",
        description="'auto' = the dataset's mains frequency and harmonics; 'none'; or Hz.",
    )
    sfreq: float = Field(128.0, gt=0, description="Resample to this rate in Hz.")
    window: float = Field(3.0, gt=0, description="Window length in seconds.")
    step: float = Field(1.0, gt=0, le=1, description="Window step as a fraction of window.")
    car: bool = Field(True, description="Common-average reference each window.")
    zscore: bool = Field(False, description="Z-score each window over channels x time.")

    @model_validator(mode="after")
    def _band(self) -> PreprocessingConfig:
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(
                f"l_freq ({self.l_freq} Hz) must be below h_freq ({self.h_freq} Hz)"
            )
        if self.h_freq is not None and self.sfreq < 2 * self.h_freq:
            raise ValueError(
                f"sfreq {self.sfreq} Hz is below twice h_freq {self.h_freq} Hz: lower h_freq "
                f"to at most {self.sfreq / 2} Hz or raise sfreq"
            )
        return self


class _ParallelSection(_Section):
    """Where a stage's independent folds run: processes, a Dask cluster or Ray; CPU or CUDA."""

    n_jobs: int = Field(1, description="Folds run in parallel; -1 = one per CPU core.")
    backend: Literal["loky", "dask", "ray"] = Field(
        "loky", description="joblib backend for n_jobs != 1 (dask/ray need their extras)."
    )
    dask_address: str | None = Field(
        None, description="Scheduler address for backend dask; null = start a LocalCluster."
    )
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu' or 'cuda[:i]'.")


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


class TrainingConfig(_ParallelSection):
    """Leave-one-subject-out training (see :mod:`eegcrp.training`)."""

    repetitions: int = Field(10, ge=1, description="Times the whole LOSO is repeated.")
    max_epochs: int = Field(
        300, ge=1, description="Epoch limit (the thesis protocol always trains this many)."
    )
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    monitor: Literal["val_loss", "val_accuracy"] = Field(
        "val_loss",
        description="Validation score for early stopping and the restored best epoch. "
        "Cross-subject validation loss can rise from over-confidence while accuracy still "
        "improves; val_accuracy (balanced accuracy, i.e. mean recall over classes, which "
        "equals accuracy for balanced classes; ties broken by lower loss) selects on what is "
        "reported.",
    )
    patience: int = Field(
        20, ge=1, description="Stop after this many epochs without a lower validation loss."
    )
    validation_subjects: int = Field(
        1, ge=0, description="Training subjects held out per fold for early stopping; 0 = none."
    )
    protocol: Literal["default", "thesis"] = Field(
        "default",
        description="'thesis' = fixed max_epochs, no validation, unshuffled, no class weights.",
    )
    threads: int | None = Field(
        None, ge=1, description="torch threads per fold; null = CPU cores // n_jobs."
    )
    seed: int = 42
# --- end ModelConfig / TrainingConfig -------------------------------------------------


# --- ExplainConfig: owned by eegcrp.crp -----------------------------------------------
#: Canonical EEG bands in Hz, each ``[low, high)`` (the thesis' bands; delta starts at the
#: 1 Hz high-pass). The one definition used by the config, spectral analysis and reports.
DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "beta": (12.0, 30.0),
    "gamma": (30.0, 60.0),
}


class ExplainConfig(_ParallelSection):
    """Concept relevance (CRP) of every fold model (see :mod:`eegcrp.crp`)."""

    layer: str = Field(
        "b2_conv2", pattern=r"^[A-Za-z0-9_.]+$",
        description="Conv layer whose filters are the concepts (any conv of the model).",
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
    short_time: bool = Field(False, description="Also store time x frequency relevance.")
    short_time_window: float = Field(
        1.0, gt=0, description="Segment length of the short-time DFT in seconds (hop: half)."
    )

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


# --------------------------------------------------------------------------- study
class StudyConfig(_Section):
    """A whole study: dataset, preprocessing and the later stages' settings."""

    name: str = Field("study", pattern=r"^[A-Za-z0-9_.-]+$")
    output_dir: Path = Field(Path("results"), description="Where every stage writes.")
    cache_dir: Path | None = Field(
        None, description="Preprocessing cache; null = $EEGCRP_CACHE or <output_dir>/cache."
    )
    seed: int = 42
    dataset: DatasetConfig
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)

    @field_validator("output_dir", "cache_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser()

    def resolved_cache_dir(self) -> Path:
        """The preprocessing cache folder (see ``cache_dir``)."""
        if self.cache_dir is not None:
            return self.cache_dir
        env = os.environ.get("EEGCRP_CACHE")
        return Path(env).expanduser() if env else self.output_dir / "cache"


# --------------------------------------------------------------------------- loading
def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...], raw: Mapping) -> list[str]:
    """Walk ``loc`` through the model tree and list the fields valid at its parent."""
    current: Any = model
    data: Any = raw
    for part in loc[:-1]:
        if isinstance(data, Mapping):
            data = data.get(part, {})
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            # Discriminated unions: pick the member named by the data's ``kind``.
            return []
        annotation = fields[part].annotation
        members = getattr(annotation, "__args__", (annotation,))
        kind = data.get("kind") if isinstance(data, Mapping) else None
        candidates = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if len(candidates) > 1 and kind is not None:
            candidates = [
                m for m in candidates if m.model_fields.get("kind") and
                m.model_fields["kind"].default == kind
            ] or candidates
        if not candidates:
            return []
        current = candidates[0]
    return sorted(getattr(current, "model_fields", {}))


def _format_errors(exc: ValidationError, raw: Mapping, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _KIND_TAGS))
        key = ".".join(str(p) for p in loc) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(StudyConfig, loc, raw)
            msg = f"unknown key; allowed keys here: {', '.join(allowed)}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  - {key}: {msg}")
    return "\n".join(lines)


_KIND_TAGS = {"bciciv2b", "eegmmidb", "eegmat", "kul_aad", "moabb", "folder", "simulated"}


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides with dotted keys to a raw config mapping.

    Values are parsed as YAML, so ``3``, ``0.5``, ``true``, ``null`` and ``[1, 2]`` get
    their natural types. Intermediate mappings are created as needed; validation later
    rejects keys that do not exist.
    """
    out = json.loads(json.dumps(raw, default=str))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override {item!r} is not KEY=VALUE; write e.g. --set preprocessing.window=2"
            )
        key, value = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override {item!r} has an empty key")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {item!r}: {part!r} holds a value, not a section"
                )
            node = child
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
    return out


def load_config(
    source: str | Path | Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    output_dir: str | Path | None = None,
) -> StudyConfig:
    """Read, override and validate a study configuration.

    Parameters
    ----------
    source : str | Path | Mapping
        A YAML file or an already parsed mapping.
    overrides : iterable of str
        ``KEY=VALUE`` strings with dotted keys (``training.repetitions=1``).
    output_dir : str | Path | None
        Replaces ``output_dir`` (the CLI's ``--out``).

    Returns
    -------
    StudyConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        If the file is missing or not YAML, or a key or value is invalid.
    """
    if isinstance(source, Mapping):
        raw = dict(source)
        label = "<mapping>"
    else:
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise ConfigError(
                f"config file {path} does not exist; pass a YAML file such as "
                "configs/bciciv2b.yaml"
            )
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a mapping of sections, not {type(raw).__name__}")
    raw = apply_overrides(raw, overrides)
    if output_dir is not None:
        raw["output_dir"] = str(output_dir)
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, raw, label)) from None


def config_hash(obj: BaseModel | Mapping[str, Any], length: int = 16) -> str:
    """Stable hex digest of a config (section), independent of key order."""
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]

"""Config sections of the data sources and of preprocessing (owned by :mod:`eegcrp.data`
and :mod:`eegcrp.preprocessing`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from .base import Section as _Section
from .base import data_root

__all__ = [
    "SIMULATED_CHANNEL_PRESETS",
    "SIMULATED_CLASSES",
    "TASK_FAMILIES",
    "BCIIV2bConfig",
    "BIDSConfig",
    "DatasetConfig",
    "EEGMATConfig",
    "EEGMMIDBConfig",
    "FolderConfig",
    "KULConfig",
    "MOABBConfig",
    "PreprocessingConfig",
    "SimulatedConfig",
    "SimulatedConfound",
]


# --------------------------------------------------------------------------- datasets
#: The task families eegcrp knows (they choose defaults: controls, the thesis' regions);
#: any other task label is accepted and gets the defaults of none of them.
TASK_FAMILIES = ("motor_imagery", "auditory_attention", "internal_attention")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def check_task_label(value: str | None) -> str | None:
    """A task label: one of :data:`TASK_FAMILIES` or any other word (letters, digits, ``_``,
    ``-``), such as a BIDS task entity (``p300``, ``ssvep``)."""
    if value is not None and not _LABEL.match(str(value)):
        raise ValueError(f"task {value!r} is not a label: use letters, digits, '_' or '-' "
                         f"(known families: {', '.join(TASK_FAMILIES)})")
    return value


TaskLabel = Annotated[str, AfterValidator(check_task_label)]


def _string_keys(value: Any) -> Any:
    # YAML reads codes such as ``{1: left_hand}`` as integers; markers are compared as text.
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return value


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
    task: TaskLabel | None = Field(
        None, description="Task family or label; null = inferred from the paradigm (imagery)."
    )


class FolderConfig(_DatasetBase):
    """In-house recordings in a folder (FIF, EDF/BDF, BrainVision, EEGLAB, XDF)."""

    kind: Literal["folder"] = "folder"
    task: TaskLabel = Field(
        ..., description="Task family of the recordings (motor_imagery, auditory_attention, "
        "internal_attention) or any other label (p300, ssvep ...).",
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
        return _string_keys(value)

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


class BIDSConfig(_Section):
    """A BIDS dataset read with mne-bids (extra ``eegcrp[bids]``; :mod:`eegcrp.data.bids`)."""

    kind: Literal["bids"] = "bids"
    path: Path = Field(..., description="The BIDS root (the folder holding "
                       "dataset_description.json).")
    task: TaskLabel = Field(..., description="The BIDS task entity to read (task-<label>).")
    family: TaskLabel | None = Field(
        None, description="The study's task family (motor_imagery, auditory_attention, "
        "internal_attention) when the BIDS label is another word; null = the BIDS label.",
    )
    subjects: list[str] | None = Field(None, description="Subject labels (sub-<label>); "
                                       "null = every subject with the task.")
    sessions: list[str] | None = Field(None, description="Session labels; null = all.")
    runs: list[str] | None = Field(None, description="Run labels; null = all.")
    datatype: str = Field("eeg", description="BIDS datatype folder.")
    classes: dict[str, str] = Field(
        ..., description="events.tsv trial_type value (the value column where trial_type is "
        "absent) -> class name; other events are ignored.",
    )
    tmin: float = 0.0
    tmax: float = Field(..., description="Window end after each event onset, in seconds.")
    channels: list[str] | None = Field(None, description="EEG channels to keep, in this "
                                       "order; null = every good EEG channel.")
    montage: str = Field("standard_1005", description="Standard montage for channels without "
                         "electrodes.tsv positions.")
    mains_freq: float | None = Field(None, description="Mains frequency in Hz; null = the "
                                     "recordings' PowerLineFrequency.")

    @field_validator("subjects", "sessions", "runs", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        # YAML reads sub-01's label 01 as 1; BIDS labels are text: "sub-" and "ses-" dropped
        if isinstance(value, list):
            return [str(v).removeprefix("sub-").removeprefix("ses-").removeprefix("run-")
                    for v in value]
        return value

    @field_validator("classes", mode="before")
    @classmethod
    def _class_keys(cls, value: Any) -> Any:
        return _string_keys(value)

    @field_validator("classes")
    @classmethod
    def _some_classes(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("map at least one trial_type value to a class, e.g. "
                             "{left: left_hand}")
        return value

    @model_validator(mode="after")
    def _window(self) -> BIDSConfig:
        if self.tmax <= self.tmin:
            raise ValueError(f"tmax ({self.tmax}) must be larger than tmin ({self.tmin})")
        return self

    def resolved_path(self, default_folder: str = "") -> Path:
        """The BIDS root."""
        return Path(self.path).expanduser()


# --- SimulatedConfig: owned by the simulator (eegcrp.data.simulate) ------------------
#: Classes of each simulated paradigm (event codes 1, 2 in this order).
SIMULATED_CLASSES: dict[str, tuple[str, str]] = {
    "motor_imagery": ("left_hand", "right_hand"),
    "auditory_attention": ("left_ear", "right_ear"),
    "internal_attention": ("internal", "external"),
}
#: Channel presets of the simulator (the lists live in :mod:`eegcrp.data.simulate`).
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
    """Simulated multi-subject EEG with known neural correlates (:mod:`eegcrp.data.simulate`)."""

    kind: Literal["simulated"] = "simulated"
    paradigm: Literal["motor_imagery", "auditory_attention", "internal_attention"] = (
        "motor_imagery"
    )
    n_subjects: int = Field(10, ge=1, le=999)
    n_trials: int = Field(60, ge=2, description="Trials per subject (balanced classes).")
    seed: int | None = Field(
        None, ge=0,
        description="Master seed; subject k uses (seed, k). null = the study's top-level seed "
        "(StudyConfig replaces it before loading; 0 for a bare dataset section).",
    )
    channels: str | list[str] = Field(
        "standard_64",
        description="Preset (standard_64, actichamp_32, 10-20_19, c3cz_c4) or a list of "
        "10-05 electrode names.",
    )
    sfreq: float = Field(256.0, ge=64, le=2048, description="Sampling frequency in Hz.")
    trial_duration: float = Field(4.0, gt=0, le=60, description="Trial length in seconds.")
    margin: float = Field(
        5.0, ge=0, le=120,
        description="Seconds of continuous signal before the first and after the last trial "
        "(trials follow each other without pause), so that filters see real context: at "
        "least half the longest filter, e.g. 1.65 s for a 1 Hz high-pass (1.65 / l_freq s).",
    )
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
    | BIDSConfig
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
    min_window_onset: float = Field(
        0.0, ge=0, description="Keep only windows starting at least this many seconds after "
        "the trial start (marker + dataset.tmin); the time control sets it.",
    )
    drop_channels: list[str] = Field(
        default_factory=list, description="Channels removed before filtering and the "
        "average reference (known bad channels; the channel control sets it).",
    )
    car: bool = Field(True, description="Common-average reference each window.")
    zscore: bool = Field(False, description="Z-score each window over channels x time.")
    # the amplitude check (eegcrp.preprocessing.amplitude): limits measured on the real data
    max_amplitude_uv: float | None = Field(
        3000.0, gt=0,
        description="A channel whose robust peak-to-peak amplitude (99.9th - 0.1th "
        "percentile after the band-pass) exceeds this many µV is implausible (mis-scaled, "
        "railing, disconnected); null = no upper limit.",
    )
    min_amplitude_uv: float | None = Field(
        0.5, ge=0,
        description="A channel whose robust peak-to-peak amplitude is below this many µV is "
        "flat (dead, stuck at a rail); null = no lower limit.",
    )
    amplitude_action: Literal["refuse", "warn"] = Field(
        "refuse",
        description="A subject with implausible channels: 'refuse' (stop with the channels "
        "and the fix) or 'warn' (keep it; the channels are named in the prepare summary and "
        "the report).",
    )

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
        low, high = self.min_amplitude_uv, self.max_amplitude_uv
        if low is not None and high is not None and low >= high:
            raise ValueError(
                f"min_amplitude_uv ({low} µV) must be below max_amplitude_uv ({high} µV)"
            )
        return self



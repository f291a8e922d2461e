"""Study configuration: one YAML file validated into typed objects.

A study is described by a single YAML document. :func:`load_config` reads it, applies
``--set KEY=VALUE`` overrides with dotted keys, and validates the result with pydantic.
Unknown keys and bad values raise :class:`ConfigError`, whose message names the key and
the allowed keys or values, so a typo never silently falls back to a default.

The sections live beside this module: :mod:`.data` (datasets, preprocessing),
:mod:`.stages` (model, training, explain), :mod:`.concepts` (concepts), :mod:`.analysis`
(sources, regions) and :mod:`.evaluate` (explanation quality).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .analysis import RegionsConfig, SourcesConfig
from .base import Section as _Section
from .base import data_root
from .concepts import ConceptsConfig
from .controls import ControlsConfig
from .data import (
    SIMULATED_CHANNEL_PRESETS,
    SIMULATED_CLASSES,
    BCIIV2bConfig,
    BIDSConfig,
    DatasetConfig,
    EEGMATConfig,
    EEGMMIDBConfig,
    FolderConfig,
    KULConfig,
    MOABBConfig,
    PreprocessingConfig,
    SimulatedConfig,
    SimulatedConfound,
)
from .decoding import DecodingConfig
from .evaluate import EvaluateConfig
from .stages import DEFAULT_BANDS, ExplainConfig, ModelConfig, ParallelSection, TrainingConfig

__all__ = [
    "DEFAULT_BANDS",
    "SIMULATED_CHANNEL_PRESETS",
    "SIMULATED_CLASSES",
    "BCIIV2bConfig",
    "BIDSConfig",
    "ConceptsConfig",
    "ConfigError",
    "ControlsConfig",
    "DatasetConfig",
    "DecodingConfig",
    "EEGMATConfig",
    "EEGMMIDBConfig",
    "EvaluateConfig",
    "ExplainConfig",
    "FolderConfig",
    "KULConfig",
    "MOABBConfig",
    "ModelConfig",
    "ParallelSection",
    "PreprocessingConfig",
    "RegionsConfig",
    "SimulatedConfig",
    "SimulatedConfound",
    "SourcesConfig",
    "StudyConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_hash",
    "data_root",
    "load_config",
]


# --------------------------------------------------------------------------- study
class StudyConfig(_Section):
    """A whole study: dataset, preprocessing and the later stages' settings."""

    name: str = Field("study", pattern=r"^[A-Za-z0-9_.-]+$")
    output_dir: Path = Field(Path("results"), description="Where every stage writes.")
    cache_dir: Path | None = Field(
        None, description="Preprocessing cache; null = $EEGCRP_CACHE or <output_dir>/cache."
    )
    seed: int = Field(
        42, ge=0, description="The study's seed: every stage seed left null (training.seed, a "
        "simulated dataset's seed, ...) takes this value.",
    )
    dataset: DatasetConfig
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    decoding: DecodingConfig = Field(default_factory=DecodingConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    concepts: ConceptsConfig = Field(default_factory=ConceptsConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    regions: RegionsConfig = Field(default_factory=RegionsConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    controls: ControlsConfig = Field(default_factory=ControlsConfig)

    @field_validator("output_dir", "cache_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser()

    @model_validator(mode="after")
    def _resolve_seeds(self) -> StudyConfig:
        # One seed for the study: a stage seed left null takes the study's, so changing
        # ``seed`` alone re-draws everything and the written config.yaml states each value.
        for section in (self.dataset, self.training, self.concepts, self.sources, self.regions,
                        self.evaluate):
            if "seed" in type(section).model_fields and section.seed is None:
                section.seed = self.seed
        return self

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
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(StudyConfig, loc, raw)
            msg = f"unknown key; allowed keys here: {', '.join(allowed)}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  - {key}: {msg}")
    return "\n".join(lines)


def _kinds() -> set[str]:
    """The ``dataset.kind`` values, from the dataset config union (its discriminator)."""
    from typing import get_args

    from .data import DatasetConfig

    return {cls.model_fields["kind"].default for cls in get_args(get_args(DatasetConfig)[0])}


#: pydantic puts the union member's tag into error locations; they are left out of messages
_KIND_TAGS = _kinds()


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
            raise ConfigError(f"override {item!r} has an empty key; write --set KEY=VALUE "
                              "with a dotted key, e.g. --set training.repetitions=1")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {item!r}: {part!r} holds a value, not a section; set it as "
                    f"--set {'.'.join(parts[:parts.index(part) + 1])}=VALUE"
                )
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or exc
            raise ConfigError(
                f"override {item!r}: the value is not valid YAML ({problem}); quote text and "
                "write lists as [1, 2], e.g. --set dataset.subjects=\"[1, 2]\""
            ) from None
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
        if path.is_dir():
            raise ConfigError(
                f"{path} is a folder, not a config file; pass a YAML file such as "
                "configs/bciciv2b.yaml (a run folder's config is <run folder>/config.yaml)"
            )
        if not path.is_file():
            raise ConfigError(
                f"config file {path} does not exist; pass a YAML file such as "
                "configs/bciciv2b.yaml"
            )
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read ({exc}); pass a readable "
                              "YAML file") from None
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

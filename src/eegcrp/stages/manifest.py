"""Stage manifests: what a stage read, what it produced, and proof that the two belong together.

Every stage writes ``<output_dir>/<stage folder>/manifest.json``:

==============  ===================================================================
``stage``       the stage's name
``identity``    hash of everything that decides the stage's results: the config sections
                it depends on (without settings that do not change results, such as
                ``n_jobs``) and the identities of the stages it reads
``config``      those config sections, as used (to name what differs on a mismatch)
``inputs``      per upstream stage: its ``identity`` and ``digest`` when this stage read it
``products``    per file (relative to the stage folder): ``sha256`` and ``bytes``
``digest``      hash of ``identity`` and every product's hash (changes with any result)
``complete``    false while the stage runs (written after each finished unit, so a killed
                run resumes), true once it finished
``extra``       stage-specific records (folds, cache files, channel positions ...)
``environment`` package versions, threads, device
``timings``     start, end, wall time in seconds
==============  ===================================================================

Before a stage reads anything it checks each upstream manifest (:func:`verify`): it must
exist and be complete, its identity must equal the identity this config gives (else the
error names every differing setting and the fix), its products must exist with their
recorded size and hash, and the upstream's own inputs must still be the results it was
computed from. Files in a stage folder that its manifest does not list are stale: readers
ignore them, the stage reports them, and ``--overwrite`` removes them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import config_hash
from ..errors import StageError
from ..io import TMP_PREFIX, sha256_file, versions, write_json_atomic

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "Manifest",
    "config_diff",
    "file_record",
    "stale_files",
]

#: File name of a stage manifest inside its stage folder.
MANIFEST_NAME = "manifest.json"
#: Version of the manifest layout.
MANIFEST_FORMAT = 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def file_record(path: str | Path) -> dict[str, Any]:
    """``{"sha256": ..., "bytes": ...}`` of a file."""
    path = Path(path)
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


@dataclass
class Manifest:
    """One stage's manifest (see the module docstring)."""

    stage: str
    identity: str
    config: dict[str, Any]
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    format: int = MANIFEST_FORMAT
    #: The stage folder it was read from or last written to (not stored: a run folder can be
    #: moved or copied, and what it references resolves against where it is now).
    location: Path | None = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------------ content
    @property
    def digest(self) -> str:
        """Hash of the identity and every product's content hash."""
        return config_hash({"identity": self.identity,
                            "products": {k: v["sha256"] for k, v in self.products.items()},
                            "extra": self.extra.get("digest_extra", {})}, length=16)

    def add_product(self, folder: Path, relative: str, record: dict[str, Any] | None = None
                    ) -> None:
        """Record a file of the stage folder (hashing it unless ``record`` is given)."""
        self.products[relative] = record or file_record(folder / relative)

    # ------------------------------------------------------------------ I/O
    def write(self, folder: str | Path) -> Path:
        """Write the manifest atomically to ``folder/manifest.json``."""
        folder = Path(folder)
        data = asdict(self)
        data.pop("location")
        data["digest"] = self.digest
        target = folder / MANIFEST_NAME
        write_json_atomic(target, data)
        self.location = folder
        return target

    @classmethod
    def read(cls, folder: str | Path) -> Manifest | None:
        """The manifest in ``folder``, or None when there is none or it is unreadable."""
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            data.pop("digest", None)
            return cls(**data, location=Path(folder))
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("%s is unreadable (%s); treating the stage as not run", path, exc)
            return None

    # ------------------------------------------------------------------ run bookkeeping
    def start(self, **environment: Any) -> None:
        """Mark the stage as running: not complete, start time, environment."""
        self.complete = False
        self.timings = {"started": _now(), "_t0": time.time()}
        self.environment = {"versions": versions(), **environment}

    def finish(self) -> None:
        """Mark the stage as complete with its end time and wall time."""
        t0 = float(self.timings.pop("_t0", time.time()))
        self.timings.update(finished=_now(), wall_time_s=round(time.time() - t0, 3))
        self.complete = True

    # ------------------------------------------------------------------ checks
    def check_products(self, folder: str | Path, *, hashes: bool = True) -> list[str]:
        """Problems with the recorded products (missing, other size, other content)."""
        folder = Path(folder)
        problems = []
        for relative, rec in self.products.items():
            path = folder / relative
            if not path.is_file():
                problems.append(f"{relative} is missing")
            elif path.stat().st_size != rec.get("bytes"):
                problems.append(f"{relative} has {path.stat().st_size} bytes, the manifest "
                                f"records {rec.get('bytes')} (truncated or replaced)")
            elif hashes and sha256_file(path) != rec.get("sha256"):
                problems.append(f"{relative} does not match its recorded hash (replaced)")
        return problems


def stale_files(folder: str | Path, manifest: Manifest | None) -> list[Path]:
    """Files below ``folder`` that the manifest does not list (and that are no temporaries)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    listed = set(manifest.products) if manifest is not None else set()
    out = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == MANIFEST_NAME or path.name.startswith(TMP_PREFIX):
            continue
        if path.relative_to(folder).as_posix() not in listed:
            out.append(path)
    return out


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def config_diff(recorded: Mapping[str, Any], current: Mapping[str, Any], limit: int = 12
                ) -> list[str]:
    """Dotted keys whose values differ: ``"key: A in the run folder, B in this config"``."""
    old, new = _flatten(recorded), _flatten(current)
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if a != b:
            lines.append(f"{key}: {json.dumps(a, default=str)} in the run folder, "
                         f"{json.dumps(b, default=str)} in this config")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def mismatch_error(stage: str, folder: Path, recorded: Mapping[str, Any],
                   current: Mapping[str, Any], fix: str) -> StageError:
    """The error for results in ``folder`` that another configuration produced."""
    diff = config_diff(recorded, current) or [
        "the same settings, but another version of eegcrp's data code or stage format"]
    return StageError(
        f"the {stage} results in {folder} were produced by another configuration:\n  - "
        + "\n  - ".join(diff) + f"\n{fix}"
    )

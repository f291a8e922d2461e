"""The preprocessing cache: keys, per-subject files with a sidecar, verification.

Layout (``<cache_dir>/<dataset kind>-<key>/``)::

    sub-<id>-<files hash>-epo.fif   model windows (float32)
    sub-<id>-<files hash>-raw.fif   filtered continuous data (float32, volts, not z-scored,
                                    after CAR when configured), trial annotations
    sub-<id>-<files hash>.json      sidecar: sha256 and size of both files (written last)
    manifest.json                   configs, versions and per-subject summary

``key`` hashes the package version, the source code that produces cached content (every
module of :mod:`eegcrp.data` and :mod:`eegcrp.preprocessing`), the dataset config without
the subject selection, and the preprocessing config: a changed config or code never reuses
stale data, while a run on a subset of subjects reuses the subjects it shares with earlier
runs. The per-subject ``files hash`` covers the names, sizes and modification times of the
subject's source files. Every file is written to a temporary name and renamed; the
sidecar, written last, marks the subject complete, and on a hit both files are checked
against it (a truncated or corrupt file is logged and recomputed, never used).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mne

from ..config import StudyConfig, config_hash
from ..data.base import BaseLoader, DataError, EEGDataset
from ..io import TMP_PREFIX, atomic_path, package_version, sha256_file, write_json_atomic

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_LAYOUT",
    "CacheEntry",
    "cache_folder",
    "cache_key",
    "code_hash",
    "load_continuous",
    "package_version",
    "remove_stale_temporary",
]

#: Version of the file layout and sidecar schema (content changes are in the code hash).
CACHE_LAYOUT = 2
_PACKAGE = Path(__file__).resolve().parents[1]  # src/eegcrp
#: Packages whose source produces cached content.
_CODE_DIRS = ("data", "preprocessing")


@lru_cache(maxsize=1)
def code_hash() -> str:
    """SHA-256 (16 hex) of every source file of :mod:`eegcrp.data` and ``.preprocessing``."""
    entries = []
    for folder in _CODE_DIRS:
        for path in sorted((_PACKAGE / folder).rglob("*.py")):
            entries.append([path.relative_to(_PACKAGE).as_posix(), sha256_file(path)])
    return config_hash({"code": entries})


def cache_key(config: StudyConfig) -> str:
    """Key of a dataset + preprocessing configuration, package version and code."""
    dataset = config.dataset.model_dump(mode="json", exclude={"subjects"})
    return config_hash({
        "layout": CACHE_LAYOUT, "eegcrp": package_version(), "code": code_hash(),
        "dataset": dataset, "preprocessing": config.preprocessing.model_dump(mode="json"),
    })


def cache_folder(config: StudyConfig) -> Path:
    """Folder holding the cached windows and continuous data of this configuration."""
    return config.resolved_cache_dir() / f"{config.dataset.kind}-{cache_key(config)}"


def remove_stale_temporary(folder: Path, older_than: float = 3600.0) -> int:
    """Delete temporary files a killed writer left in ``folder`` (only old ones: another
    process may be writing into the same cache right now); returns how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for item in folder.glob(f"{TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if time.time() - item.stat().st_mtime > older_than:
                item.unlink()
                removed += 1
    return removed


def _files_hash(paths: list[Path]) -> str:
    entries = []
    for p in paths:
        st = Path(p).stat()
        entries.append([Path(p).name, st.st_size, st.st_mtime_ns])
    return config_hash({"files": entries}, length=10)


@dataclass(frozen=True)
class CacheEntry:
    """The cache files of one subject."""

    subject: str
    windows: Path
    continuous: Path
    sidecar: Path

    @classmethod
    def of(cls, folder: Path, loader: BaseLoader, subject: str) -> CacheEntry:
        files = loader.files(subject)
        stem = f"sub-{subject}-{_files_hash(files) if files else 'nofiles'}"
        return cls(subject, folder / f"{stem}-epo.fif", folder / f"{stem}-raw.fif",
                   folder / f"{stem}.json")

    def files(self) -> dict[str, Path]:
        """Role (``windows``, ``continuous``) -> path."""
        return {"windows": self.windows, "continuous": self.continuous}

    # ------------------------------------------------------------------ read
    def verified(self) -> dict[str, Any] | None:
        """The sidecar if it exists and both files match it; else None (with a warning
        naming the file when a file is missing, truncated or corrupt)."""
        if not self.sidecar.exists():
            return None
        try:
            sidecar = json.loads(self.sidecar.read_text())
            expected = {role: sidecar["files"][role] for role in self.files()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("cache sidecar %s is unreadable (%s); recomputing subject %s",
                           self.sidecar, exc, self.subject)
            return None
        for role, path in self.files().items():
            want = expected[role]
            if not path.exists():
                logger.warning("cache file %s is missing; recomputing subject %s", path,
                               self.subject)
                return None
            size = path.stat().st_size
            if size != want.get("bytes") or sha256_file(path) != want.get("sha256"):
                logger.warning(
                    "cache file %s is truncated or corrupt (%d bytes, expected %s with the "
                    "recorded sha256); recomputing subject %s", path, size, want.get("bytes"),
                    self.subject,
                )
                return None
        return sidecar

    def read_windows(self) -> mne.BaseEpochs | None:
        """The cached windows, or None (with a warning) if MNE cannot read them."""
        try:
            return mne.read_epochs(self.windows, preload=True, verbose="error")
        except Exception as exc:  # MNE raises several types for damaged FIF files
            logger.warning("cache file %s cannot be read (%s); recomputing subject %s",
                           self.windows, exc, self.subject)
            return None

    # ------------------------------------------------------------------ write
    def write(self, windows: mne.BaseEpochs, continuous: mne.io.BaseRaw,
              extra: dict[str, Any]) -> dict[str, Any]:
        """Write both files atomically, then the sidecar (last); returns the sidecar."""
        self.sidecar.unlink(missing_ok=True)  # the subject is incomplete until rewritten
        try:
            with atomic_path(self.windows, "-epo.fif") as tmp:
                windows.save(tmp, overwrite=True, fmt="single", verbose="error")
            with atomic_path(self.continuous, "-raw.fif") as tmp:
                continuous.save(tmp, overwrite=True, fmt="single", verbose="error")
        except BaseException:
            # no orphan: a file without its sidecar would never be used, only take space
            for path in self.files().values():
                path.unlink(missing_ok=True)
            raise
        sidecar = {
            "layout": CACHE_LAYOUT,
            "subject": self.subject,
            "files": {role: {"name": path.name, "bytes": path.stat().st_size,
                             "sha256": sha256_file(path)}
                      for role, path in self.files().items()},
            **extra,
        }
        write_json_atomic(self.sidecar, sidecar)
        return sidecar

    def describe(self, sidecar: dict[str, Any]) -> dict[str, Any]:
        """The ``dataset.info['cache_files']`` entry of this subject."""
        return {
            "windows": str(self.windows.resolve()),
            "continuous": str(self.continuous.resolve()),
            "sha256": {role: sidecar["files"][role]["sha256"] for role in self.files()},
        }


def load_continuous(dataset: EEGDataset, subject: str) -> mne.io.Raw:
    """The cached filtered continuous data of one subject of a prepared dataset.

    Parameters
    ----------
    dataset : EEGDataset
        A dataset returned by :func:`eegcrp.preprocessing.prepare`.
    subject : str
        Subject id.

    Returns
    -------
    mne.io.Raw
        Filtered, resampled data in volts (after CAR when configured, never z-scored),
        segments joined with ``BAD boundary``/``EDGE boundary`` annotations and one
        ``trial/<class>`` annotation per trial, in trial order. The windows of the subject
        are cuts of it (before z-scoring): trial ``k`` starts at the onset of the ``k``-th
        ``trial/`` annotation, window ``w`` at ``onset`` seconds after that.

    Raises
    ------
    DataError
        If the dataset has no cache entry for ``subject`` or the file changed since.
    """
    files = dataset.info.get("cache_files") or {}
    if subject not in files:
        raise DataError(
            f"dataset {dataset.name!r} has no cached continuous data for subject {subject!r} "
            f"(cached: {sorted(files)}); load it with eegcrp.preprocessing.prepare(config)"
        )
    path = Path(files[subject]["continuous"])
    expected = files[subject]["sha256"]["continuous"]
    if not path.exists() or sha256_file(path) != expected:
        state = "is missing" if not path.exists() else "changed since prepare (sha256)"
        raise DataError(
            f"cached continuous data {path} of subject {subject} {state}; run prepare again "
            "(it recomputes missing or corrupt cache files)"
        )
    return mne.io.read_raw_fif(path, preload=True, verbose="error")

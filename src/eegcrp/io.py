"""Atomic file writes and content hashes, shared by every stage and the cache.

Every file eegcrp writes goes to a temporary name in the target folder and is renamed
onto its final name only when complete (``os.replace`` is atomic on POSIX and Windows), so
a killed run never leaves a half-written file where a reader would take it for a result.
Temporary names start with ``.tmp-`` and are removed by the stage that owns the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "TMP_PREFIX",
    "atomic_path",
    "nan_to_none",
    "remove_temporary",
    "sha256_bytes",
    "sha256_file",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

#: Prefix of the temporary files of :func:`atomic_path`.
TMP_PREFIX = ".tmp-"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    On error the temporary file is removed, so readers never see a half-written file.
    ``suffix`` keeps file-type endings that writers check (e.g. ``-epo.fif``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.stem[:20]}-", suffix=suffix,
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; use normal permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically, flushed to disk before the rename."""
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text_atomic(target: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    write_bytes_atomic(target, text.encode())


def nan_to_none(value: Any) -> Any:
    """Replace non-finite floats by None in nested dicts and lists (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    return value


def write_json_atomic(target: str | Path, obj: Any, indent: int = 1) -> None:
    """Write ``obj`` as strict JSON (NaN/Inf as null, sorted keys) to ``target`` atomically."""
    text = json.dumps(nan_to_none(obj), indent=indent, sort_keys=True, allow_nan=False,
                      default=str)
    write_text_atomic(target, text)


def sha256_bytes(data: bytes, length: int = 64) -> str:
    """Hex SHA-256 of ``data`` (first ``length`` characters)."""
    return hashlib.sha256(data).hexdigest()[:length]


def sha256_file(path: str | Path, length: int = 64, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in chunks (first ``length`` characters)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def remove_temporary(folder: str | Path) -> int:
    """Delete the temporary files a killed writer left in ``folder``; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for item in folder.glob(f"{TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            item.unlink()
            removed += 1
    return removed

"""Atomic file writes, content hashes, versions and checkpoints, shared by every stage.

Every file eegcrp writes goes to a temporary name in the target folder and is renamed
onto its final name only when complete (``os.replace`` is atomic on POSIX and Windows), so
a killed run never leaves a half-written file where a reader would take it for a result.
Temporary names start with ``.tmp-`` and are removed, in its whole folder tree, by the next
run of the stage that owns the folder (:func:`remove_temporary`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINT_FORMAT",
    "TMP_PREFIX",
    "atomic_path",
    "load_checkpoint",
    "nan_to_none",
    "package_version",
    "remove_temporary",
    "save_checkpoint",
    "sha256_bytes",
    "sha256_file",
    "versions",
    "write_bytes_atomic",
    "write_csv_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

#: Prefix of the temporary files of :func:`atomic_path`.
TMP_PREFIX = ".tmp-"


@functools.cache
def _umask() -> int:
    """The process umask, read once when first needed (not at import)."""
    try:  # Linux states it; reading it does not change it, as os.umask would
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere only os.umask tells, by setting it
    os.umask(mask)
    return mask


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
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; use normal permissions
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


def write_csv_atomic(target: str | Path, frame: Any, index: bool = False) -> None:
    """Write a :class:`pandas.DataFrame` as CSV to ``target`` atomically (the one CSV
    writer of the package)."""
    with atomic_path(target, ".csv") as tmp:
        frame.to_csv(tmp, index=index)


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
    """Delete the temporary files a killed writer left anywhere in ``folder``'s tree.

    Sub-folders count too (``training/folds/``, ``explain/folds/``): a killed run leaves
    its temporaries wherever its workers were writing. Call it only where no other writer
    uses the tree, i.e. when a stage starts, before its workers do (a run's own workers
    write into the tree afterwards; workers of a killed run end with it, see
    :mod:`eegcrp.parallel`). A folder shared by concurrent runs, such as the preprocessing
    cache, removes only old temporaries instead.

    Parameters
    ----------
    folder : str | Path
        The stage's folder (a missing folder is fine).

    Returns
    -------
    int
        How many files were removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for item in folder.rglob(f"{TMP_PREFIX}*"):
        # a file only: a directory named like a temporary is nothing atomic_path wrote
        with contextlib.suppress(OSError):
            if item.is_file() or item.is_symlink():
                item.unlink()
                removed += 1
    return removed


# --------------------------------------------------------------------------- versions
def package_version() -> str:
    """The installed eegcrp version (``0+unknown`` when run from an uninstalled tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return str(version("eegcrp"))
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        return "0+unknown"


def versions() -> dict[str, str]:
    """Versions of the packages that decide a result (recorded in manifests, checkpoints)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "eegcrp": package_version()}
    for name in ("numpy", "scipy", "mne", "torch", "zennit", "scikit-learn"):
        try:
            out[name] = str(version(name))
        except PackageNotFoundError:
            continue
    return out


# --------------------------------------------------------------------------- checkpoints
#: Version of the checkpoint layout.
CHECKPOINT_FORMAT = 2


def save_checkpoint(path: str | Path, state_dict: dict[str, Any], meta: dict[str, Any]) -> str:
    """Write a model checkpoint (weights + metadata) atomically; returns its SHA-256.

    ``meta`` must hold what :func:`load_checkpoint` needs to rebuild the model:
    ``model_config`` (dict), ``ch_names``, ``n_times``, ``classes`` and ``sfreq``.
    """
    import io as _io

    import torch

    missing = [k for k in ("model_config", "ch_names", "n_times", "classes", "sfreq")
               if k not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata lacks {missing}")
    buf = _io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": state_dict, **meta}, buf)
    data = buf.getvalue()
    write_bytes_atomic(path, data)
    return sha256_bytes(data)


def load_checkpoint(path: str | Path, device: Any = "cpu", sha256: str | None = None
                    ) -> tuple[Any, dict[str, Any]]:
    """Rebuild a trained model from its checkpoint.

    Parameters
    ----------
    path : str | Path
        A ``.pt`` file written by :func:`save_checkpoint`.
    device : str | torch.device
        Where to put the model.
    sha256 : str | None
        Expected content hash (from a stage manifest); a mismatch is an error.

    Returns
    -------
    model : torch.nn.Sequential
        In eval mode, on ``device``.
    meta : dict
        Everything saved with it (``ch_names``, ``sfreq``, ``n_times``, ``classes``,
        ``model_config``, ``normalization`` ...).
    """
    import torch

    from .config import ModelConfig
    from .errors import TrainingError
    from .models import build_model

    path = Path(path)
    fix = "re-run `eegcrp train` to retrain that fold"
    if not path.is_file():
        raise TrainingError(f"checkpoint {path} does not exist; {fix}")
    if sha256 is not None and sha256_file(path, len(sha256)) != sha256:
        raise TrainingError(f"checkpoint {path} does not match its recorded hash (corrupt or "
                            f"replaced); {fix}")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise TrainingError(f"checkpoint {path} cannot be read ({exc}); {fix}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path} is not an eegcrp checkpoint of format "
                            f"{CHECKPOINT_FORMAT}; {fix}")
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    model = build_model(
        ModelConfig.model_validate(meta["model_config"]),
        n_channels=len(meta["ch_names"]),
        n_times=int(meta["n_times"]),
        n_classes=len(meta["classes"]),
        sfreq=float(meta["sfreq"]),
    )
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError) as exc:
        raise TrainingError(f"checkpoint {path} does not fit its model ({exc}); {fix}") from exc
    return model.to(device).eval(), meta

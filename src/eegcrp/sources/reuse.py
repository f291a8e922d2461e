"""Reuse of subject ICAs across studies of the same prepared data.

A subject's decomposition depends on its cached continuous recording and on the ICA
settings only, never on the models: a study retrained with other repetitions, seeds or
engine, a confound control that keeps the preprocessing, or a second study sharing a cache
root would otherwise refit the same ICA (minutes per subject at 64 channels). Each fitted
decomposition is therefore also kept beside the cached data it came from
(``<cache folder>/ica/sub-<id>-<key>.nc``), under a key of everything that decides it:
the recording's SHA-256, the ICA settings, the versions of the packages that compute it
and the source of :mod:`.ica`. The run folder still gets its own copy, so its results are
read from the run folder alone; the copy holds exactly what a fresh fit would have written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..config import config_hash
from ..io import sha256_file
from .ica import SubjectICA, fit_subject

logger = logging.getLogger(__name__)

__all__ = ["MEMO_FOLDER", "fit_or_recall", "memo_key", "memo_path", "recall", "remember"]

#: Folder of the kept decompositions, inside the preprocessing cache folder.
MEMO_FOLDER = "ica"
#: Packages whose numbers the decomposition and its labels are (picard evaluates its
#: densities with numexpr when that is installed: other rounding, another local optimum).
_PACKAGES = ("eegcrp", "numpy", "scipy", "mne", "python-picard", "numexpr", "mne-icalabel",
             "torch", "onnxruntime")


def _versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def memo_key(recording_sha256: str, settings: dict[str, Any]) -> str:
    """Key of one subject's decomposition.

    Parameters
    ----------
    recording_sha256 : str
        SHA-256 of the cached continuous recording (the ``prepare`` manifest's).
    settings : dict
        Every argument of :func:`eegcrp.sources.fit_subject` besides the data.
    """
    code = sha256_file(Path(__file__).with_name("ica.py"))
    return config_hash({"recording": recording_sha256, "settings": settings,
                        "versions": _versions(), "code": code})


def memo_path(cache_folder: Path, subject: str, key: str) -> Path:
    """Where the decomposition of ``subject`` with ``key`` is kept."""
    return Path(cache_folder) / MEMO_FOLDER / f"sub-{subject}-{key}.nc"


def recall(path: Path, key: str) -> SubjectICA | None:
    """The kept decomposition at ``path`` when it is intact and has ``key``, else None."""
    if not path.is_file():
        return None
    try:
        if SubjectICA.stored_attribute(path, "memo_key") != key:
            return None
        return SubjectICA.load(path)
    except Exception as exc:  # truncated or foreign file: fit again, overwrite it later
        logger.warning("kept ICA %s is unreadable (%s); fitting again", path, exc)
        return None


def remember(ica: SubjectICA, path: Path, key: str) -> None:
    """Keep ``ica`` at ``path`` (atomically; a read-only cache only loses the reuse)."""
    try:
        ica.save(path, {"memo_key": key})
    except OSError as exc:
        logger.warning("could not keep the ICA of subject %s in %s (%s); later studies fit "
                       "it again", ica.subject, path.parent, exc)


def fit_or_recall(subject: str, load_raw: Callable[[], Any], recording_sha256: str,
                  cache_folder: Path, settings: dict[str, Any], threads: int | None = 1
                  ) -> tuple[SubjectICA, bool]:
    """The decomposition of ``subject``: the one kept in the cache, or fitted and kept.

    Parameters
    ----------
    subject : str
    load_raw : callable
        Returns the subject's cached continuous recording (called only to fit).
    recording_sha256 : str
        SHA-256 of that recording's cache file.
    cache_folder : Path
        The preprocessing cache folder the recording lives in.
    settings : dict
        The arguments of :func:`.ica.fit_subject` besides the data.
    threads : int | None
        BLAS and torch threads while fitting (1 beside other workers).

    Returns
    -------
    ica : SubjectICA
    reused : bool
        True when it came from the cache.

    Raises
    ------
    SourcesError
        When the fit fails (does not converge); nothing is kept then.
    """
    import torch
    from threadpoolctl import threadpool_limits

    key = memo_key(recording_sha256, settings)
    kept = memo_path(cache_folder, subject, key)
    ica = recall(kept, key)
    if ica is not None:
        return ica, True
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads or 1))
    try:
        with threadpool_limits(int(threads or 1)):
            ica = fit_subject(load_raw(), subject, **settings)
    finally:
        torch.set_num_threads(old)
    remember(ica, kept, key)
    return ica, False

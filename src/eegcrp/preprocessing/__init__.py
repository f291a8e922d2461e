"""Preprocessing of recordings into model-ready windows, with an on-disk cache.

:class:`Preprocessor` (:mod:`.core`) filters each subject's *continuous* recording, then
resamples it, then cuts trials and windows; :func:`prepare` (:mod:`.prepare`) runs it for a
study and keeps, per subject, the windows and the filtered continuous data in the cache
(:mod:`.cache`; :func:`load_continuous` reads the latter back).
"""

from .cache import cache_folder, cache_key, code_hash, load_continuous
from .core import Preprocessed, Preprocessor, TrialsTooShortError
from .prepare import prepare

__all__ = [
    "Preprocessed",
    "Preprocessor",
    "TrialsTooShortError",
    "cache_folder",
    "cache_key",
    "code_hash",
    "load_continuous",
    "prepare",
]

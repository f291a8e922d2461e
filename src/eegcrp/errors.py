"""The errors eegcrp raises for bad input; each message names what is wrong and the fix.

Every error a user can cause (a config key, a data file, a missing or mismatched stage
result) derives from :class:`EEGCRPError`. The command line turns any of them into exit
status 2 and prints the message; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ConceptsError",
    "ConfigError",
    "DataError",
    "EEGCRPError",
    "ExplainError",
    "MissingDependencyError",
    "StageError",
    "StoreError",
    "TrainingError",
]


class EEGCRPError(Exception):
    """Base of every error caused by the input; the message says what to do next."""


class ConfigError(EEGCRPError, ValueError):
    """A study configuration is invalid; the message names the key and what is allowed."""


class DataError(EEGCRPError, ValueError):
    """Input data cannot be used; the message names the file or subject and the fix."""


class TrainingError(EEGCRPError, RuntimeError):
    """Training cannot run or a checkpoint cannot be used; the message says why and the fix."""


class ExplainError(EEGCRPError, RuntimeError):
    """Explanations cannot be computed; the message says why and the fix."""


class ConceptsError(EEGCRPError, RuntimeError):
    """Concepts cannot be clustered from the explain results; the message says why and the fix."""


class StoreError(EEGCRPError, RuntimeError):
    """A results store is missing or unreadable; the message says why and the fix."""


class StageError(EEGCRPError, RuntimeError):
    """A stage's inputs are missing, stale or from another configuration."""


class MissingDependencyError(EEGCRPError, ImportError):
    """A package a stage needs is not installed; the message gives the install command."""

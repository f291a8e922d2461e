"""Base of every config section."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

__all__ = ["Section", "data_root"]


def data_root() -> Path:
    """Folder holding the real recordings: ``$EEGCRP_DATA`` or ``../shared/data``."""
    return Path(os.environ.get("EEGCRP_DATA", "../shared/data")).expanduser()


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)



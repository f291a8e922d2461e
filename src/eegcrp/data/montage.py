"""Electrode positions and channel kinds: template montages and bipolar derivations.

Every loader gives its EEG channels positions from a template montage
(:func:`set_montage_strict`) and marks bipolar derivations the MNE way
(:func:`mark_bipolar`: coil type ``FIFFV_COIL_EEG_BIPOLAR``, as
:func:`mne.set_bipolar_reference` does), so preprocessing can refuse operations that
make no sense on them (:func:`is_bipolar`).
"""

from __future__ import annotations

from collections.abc import Sequence

import mne
import numpy as np
from mne.io.constants import FIFF

from ..errors import DataError

__all__ = [
    "is_bipolar",
    "make_montage",
    "mark_bipolar",
    "missing_positions",
    "set_montage_strict",
]

# MNE 1.13 renamed the template montages (standard_* -> colin27_*) and deprecated the old
# names; configs keep the names researchers know and we translate when the new ones exist.
_MONTAGE_ALIASES = {"standard_1005": "colin27_1005", "standard_1020": "colin27_1020"}


def make_montage(name: str, where: str = "montage") -> mne.channels.DigMontage:
    """Build a template montage by name, accepting the classic ``standard_10xx`` names."""
    builtin = mne.channels.get_builtin_montages()
    resolved = _MONTAGE_ALIASES.get(name, name)
    if resolved not in builtin:
        resolved = name
    if resolved not in builtin:
        raise DataError(
            f"{where}: unknown montage {name!r}; use 'standard_1005', 'standard_1020' or one "
            f"of {builtin}"
        )
    return mne.channels.make_standard_montage(resolved)


def set_montage_strict(
    inst: mne.io.BaseRaw | mne.BaseEpochs | mne.Info,
    montage: str | mne.channels.DigMontage,
    where: str,
) -> None:
    """Set a montage, failing with the unknown channel names instead of MNE's generic error."""
    if isinstance(montage, str):
        montage = make_montage(montage, where)
    info = inst if isinstance(inst, mne.Info) else inst.info
    eeg = [info["ch_names"][i] for i in mne.pick_types(info, eeg=True, exclude=())]
    known = {name.lower() for name in montage.ch_names}
    unknown = [name for name in eeg if name.lower() not in known]
    if unknown:
        raise DataError(
            f"{where}: channel(s) {unknown} have no position in the montage; rename them to "
            "10-05 names (dataset.rename), drop them (dataset.channels) or pick another montage"
        )
    inst.set_montage(montage, match_case=False, on_missing="raise", verbose="error")


def missing_positions(info: mne.Info) -> list[str]:
    """EEG channels of ``info`` without a usable position (no montage, or NaN/zero loc)."""
    out = []
    for i in mne.pick_types(info, eeg=True, exclude=()):
        loc = np.asarray(info["chs"][i]["loc"][:3], dtype=float)
        if not np.all(np.isfinite(loc)) or np.linalg.norm(loc) == 0:
            out.append(info["ch_names"][i])
    return out


def mark_bipolar(info: mne.Info, ch_names: Sequence[str] | None = None) -> None:
    """Mark EEG channels as bipolar derivations (coil type ``FIFFV_COIL_EEG_BIPOLAR``).

    Parameters
    ----------
    info : mne.Info
        Modified in place.
    ch_names : sequence of str | None
        Channels to mark; None marks every EEG channel.
    """
    names = set(info["ch_names"] if ch_names is None else ch_names)
    unknown = sorted(names - set(info["ch_names"]))
    if unknown:
        raise DataError(f"mark_bipolar: channel(s) {unknown} are not in the data")
    for ch in info["chs"]:
        if ch["ch_name"] in names and ch["kind"] == FIFF.FIFFV_EEG_CH:
            ch["coil_type"] = FIFF.FIFFV_COIL_EEG_BIPOLAR


def is_bipolar(info: mne.Info) -> bool:
    """Whether any EEG channel of ``info`` is a bipolar derivation.

    A channel is bipolar when its coil type is ``FIFFV_COIL_EEG_BIPOLAR`` (set by
    :func:`mne.set_bipolar_reference` and by :func:`mark_bipolar`). One bipolar channel is
    enough to make an average reference meaningless, hence *any*.
    """
    return any(
        ch["kind"] == FIFF.FIFFV_EEG_CH and ch["coil_type"] == FIFF.FIFFV_COIL_EEG_BIPOLAR
        for ch in info["chs"]
    )

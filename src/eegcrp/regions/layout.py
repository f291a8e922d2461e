"""Scalp regions: lobe x hemisphere from 3-D positions (any montage), or named presets.

**Automatic regions.** A sphere is fitted to the electrode positions (head frame: +x right,
+y nasion, +z up; the head frame's origin when the fit is implausible) and each channel's
direction ``u`` from its centre gives

* the side: ``|u_x| < 0.12`` midline, else left (``u_x < 0``) or right;
* temporal: at or below the outer 10-20 ring (polar angle from the vertex >= 82 deg) and
  within 30 deg of the coronal plane (FT7, T7, TP7, T9, FT9, TP9, A1; F7 and P7 are
  frontal and parietal as in the thesis' lists);
* otherwise the lobe from the anterior latitude ``asin(u_y)``: frontal above 32 deg (Fp,
  AF, F rows), central from -28 to 32 deg (FC, C, CP rows), parietal from -47 to -28 deg
  (P row), occipital below -47 deg (PO, O, I rows).

The thresholds lie in the gaps between the 10-10 rows of MNE's template positions, so
every standard montage gets the regions its electrode names suggest. Regions are named
``<lobe>_<side>`` (temporal has no midline). A lobe whose side regions hold fewer than
``min_channels`` channels is merged into one region ``<lobe>``; a region still smaller is
kept and listed in ``small``; lobe x side cells without any channel are listed in
``empty``. Nothing is dropped silently: channels without a position are listed in
``unassigned``.

**Presets.** ``thesis`` gives the thesis' channel lists for the dataset's task (motor
imagery, auditory attention, internal attention); a mapping ``{region: [channels]}`` is
a custom layout. Channels of a preset that the data lack are listed in ``missing`` (the
thesis ignored them silently), data channels in no region in ``unassigned``. Preset
regions may overlap (the thesis' lists do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import EEGCRPError

__all__ = [
    "LOBES",
    "SIDES",
    "THESIS_PRESETS",
    "RegionLayout",
    "RegionsError",
    "auto_layout",
    "check_scalp",
    "make_layout",
    "preset_layout",
]

LOBES = ("frontal", "central", "temporal", "parietal", "occipital")
SIDES = ("left", "midline", "right")

_MIDLINE = 0.12
_TEMPORAL_POLAR = 82.0
_TEMPORAL_LAT = 30.0
_FRONTAL, _CENTRAL, _PARIETAL = 32.0, -28.0, -47.0

# 10-20 names of 10-10 positions (T3 = T7 ...), for matching preset lists
_ALIASES = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}


def _mirror(names: str) -> list[str]:
    """Right-hemisphere counterparts of left 10-10 names (odd digit -> next even digit)."""
    out = []
    for name in names.split():
        head, digits = name.rstrip("0123456789"), name[len(name.rstrip("0123456789")):]
        out.append(f"{head}{int(digits) + 1}")
    return out


_L_FRONTAL = "Fp1 AF3 AF7 F7 F5 F3 F1"
_L_MOTOR = "FC5 FC3 FC1 C5 C3 C1 CP5 CP3 CP1"
_L_TEMPORAL = "FT7 T7 TP7 T9 FT9 TP9"
_L_PARIETAL = "TP7 P7 PO7 P9 P5 TP9"
_L_OCCIPITAL = "PO7 O1 PO3"
_THESIS_REGIONS = {
    "left_frontal": _L_FRONTAL.split(), "right_frontal": _mirror(_L_FRONTAL),
    "left_motor": _L_MOTOR.split(), "right_motor": _mirror(_L_MOTOR),
    "left_temporal": _L_TEMPORAL.split(), "right_temporal": _mirror(_L_TEMPORAL),
    "left_parietal": _L_PARIETAL.split(), "right_parietal": _mirror(_L_PARIETAL),
    "left_occipital": _L_OCCIPITAL.split(), "right_occipital": _mirror(_L_OCCIPITAL),
    "frontal": _L_FRONTAL.split() + _mirror(_L_FRONTAL) + ["Fpz", "AFz", "Fz"],
    "occipital": _L_OCCIPITAL.split() + _mirror(_L_OCCIPITAL) + ["POz", "Oz"],
    "central": "Cz C5 C3 C1 C2 C4 C6".split(),
}
#: The thesis' region lists per task (thesis_implementation.md, section 6).
THESIS_PRESETS: dict[str, dict[str, list[str]]] = {
    "motor_imagery": {k: _THESIS_REGIONS[k] for k in (
        "left_frontal", "right_frontal", "left_motor", "right_motor", "left_parietal",
        "right_parietal")},
    "auditory_attention": {k: _THESIS_REGIONS[k] for k in (
        "left_frontal", "right_frontal", "left_temporal", "right_temporal", "left_occipital",
        "right_occipital")},
    "internal_attention": {k: _THESIS_REGIONS[k] for k in (
        "frontal", "occipital", "left_parietal", "right_parietal", "central")},
}


class RegionsError(EEGCRPError, ValueError):
    """Regions cannot be formed for these channels; the message names the fix."""


@dataclass
class RegionLayout:
    """Regions as channel lists (in data order) and what did not fit.

    Attributes
    ----------
    name : str
        ``auto``, ``thesis/<task>`` or ``custom``.
    regions : dict of str to list of str
    empty, small : list of str
        Regions without channels (dropped, named here) / below ``min_channels``.
    merged : list of str
        Lobes whose sides were merged.
    unassigned : list of str
        Data channels in no region.
    missing : dict of str to list of str
        Preset channels the data lack, per region.
    """

    name: str
    regions: dict[str, list[str]]
    empty: list[str] = field(default_factory=list)
    small: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)

    def membership(self, ch_names: Sequence[str]) -> np.ndarray:
        """(region, channel) 0/1 matrix in the order of :attr:`regions`."""
        index = {n: i for i, n in enumerate(ch_names)}
        out = np.zeros((len(self.regions), len(ch_names)))
        for r, chans in enumerate(self.regions.values()):
            out[r, [index[c] for c in chans]] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain dict; ``order`` keeps the region order through key-sorted JSON."""
        return {**asdict(self), "order": list(self.regions)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegionLayout:
        data = dict(data)
        order = data.pop("order", None) or list(data["regions"])
        data["regions"] = {k: list(data["regions"][k]) for k in order}
        return cls(**data)


def check_scalp(channels: Mapping[str, Any]) -> None:
    """Refuse bipolar derivations (no scalp site, hence no region).

    Parameters
    ----------
    channels : mapping
        ``names``, ``positions``, ``bipolar`` (:attr:`eegcrp.store.RelevanceRun.channels`).
    """
    if channels.get("bipolar"):
        bip = channels.get("bipolar_channels") or channels.get("names", [])
        raise RegionsError(
            f"channels {list(bip)[:5]} are bipolar derivations: a bipolar channel measures "
            "the difference of two sites, so it belongs to no scalp region. Skip this stage "
            "(--set regions.enabled=false) or use monopolar data"
        )


def _sphere(points: np.ndarray) -> np.ndarray:
    """Centre of the least-squares sphere through ``points`` (head origin if implausible)."""
    if len(points) >= 8:
        lhs = np.c_[2 * points, np.ones(len(points))]
        sol, *_ = np.linalg.lstsq(lhs, (points**2).sum(1), rcond=None)
        centre = sol[:3]
        radius = np.sqrt(max(sol[3] + centre @ centre, 0.0))
        if 0.05 <= radius <= 0.15 and np.linalg.norm(centre) < 0.05:
            return centre
    return np.zeros(3)


def _classify(u: np.ndarray) -> tuple[str, str]:
    side = "midline" if abs(u[0]) < _MIDLINE else ("left" if u[0] < 0 else "right")
    polar = np.degrees(np.arccos(np.clip(u[2], -1, 1)))
    latitude = np.degrees(np.arcsin(np.clip(u[1], -1, 1)))
    if side != "midline" and polar >= _TEMPORAL_POLAR and abs(latitude) < _TEMPORAL_LAT:
        return "temporal", side
    if latitude > _FRONTAL:
        return "frontal", side
    if latitude > _CENTRAL:
        return "central", side
    if latitude > _PARIETAL:
        return "parietal", side
    return "occipital", side


def auto_layout(names: Sequence[str], positions: Sequence[Sequence[float] | None],
                min_channels: int = 1) -> RegionLayout:
    """Lobe x side regions from 3-D positions (see the module docstring).

    Parameters
    ----------
    names : sequence of str
    positions : sequence of (x, y, z) in m (head frame) or None where unknown
    min_channels : int
        Regions with fewer channels are merged per lobe (then reported if still smaller).
    """
    known = [(n, np.asarray(p, np.float64)) for n, p in zip(names, positions, strict=True)
             if p is not None and np.all(np.isfinite(p)) and np.any(np.asarray(p) != 0)]
    unassigned = [n for n in names if n not in {k for k, _ in known}]
    if not known:
        raise RegionsError("no channel has a scalp position; set a montage in the dataset "
                           "config, or use regions.layout: {region: [channels]}")
    pts = np.stack([p for _, p in known])
    centre = _sphere(pts)
    cells: dict[tuple[str, str], list[str]] = {}
    for (name, _), p in zip(known, pts, strict=True):
        d = p - centre
        cells.setdefault(_classify(d / np.linalg.norm(d)), []).append(name)
    regions: dict[str, list[str]] = {}
    empty, merged, small = [], [], []
    for lobe in LOBES:
        sides = [s for s in SIDES if not (lobe == "temporal" and s == "midline")]
        present = {s: cells.get((lobe, s), []) for s in sides}
        if any(0 < len(v) < min_channels for v in present.values()):
            chans = [n for s in sides for n in present[s]]
            merged.append(lobe)
            regions[lobe] = chans
            continue
        for s in sides:
            key = f"{lobe}_{s}"
            if present[s]:
                regions[key] = present[s]
            else:
                empty.append(key)
    order = {n: i for i, n in enumerate(names)}
    regions = {k: sorted(v, key=order.__getitem__) for k, v in regions.items() if v}
    small = [k for k, v in regions.items() if len(v) < min_channels]
    return RegionLayout("auto", regions, empty, small, merged, unassigned)


def _norm(name: str) -> str:
    low = name.strip().lower()
    return _ALIASES.get(low, low)


def preset_layout(preset: Mapping[str, Sequence[str]], names: Sequence[str],
                  label: str = "custom", min_channels: int = 1) -> RegionLayout:
    """Regions from named channel lists, matched case-insensitively (T3 = T7 ...)."""
    lookup = {_norm(n): n for n in names}
    regions, missing, empty = {}, {}, []
    order = {n: i for i, n in enumerate(names)}
    for region, chans in preset.items():
        found = [lookup[_norm(c)] for c in chans if _norm(c) in lookup]
        lost = [c for c in chans if _norm(c) not in lookup]
        if lost:
            missing[region] = list(lost)
        if found:
            regions[region] = sorted(dict.fromkeys(found), key=order.__getitem__)
        else:
            empty.append(region)
    used = {c for v in regions.values() for c in v}
    small = [k for k, v in regions.items() if len(v) < min_channels]
    return RegionLayout(label, regions, empty, small, [], [n for n in names if n not in used],
                        missing)


def make_layout(setting: str | Mapping[str, Sequence[str]], channels: Mapping[str, Any],
                task: str | None = None, min_channels: int = 1) -> RegionLayout:
    """The layout ``regions.layout`` asks for, for the run's channels.

    Parameters
    ----------
    setting : 'auto' | 'thesis' | mapping
    channels : mapping
        ``names``, ``positions``, ``bipolar`` of the data.
    task : str | None
        The dataset's task (for ``thesis``).
    min_channels : int

    Raises
    ------
    RegionsError
        Bipolar channels, an unknown task for ``thesis``, or no region with channels.
    """
    check_scalp(channels)
    names = list(channels.get("names", []))
    if setting == "auto":
        layout = auto_layout(names, list(channels.get("positions") or [None] * len(names)),
                             min_channels)
    elif setting == "thesis":
        if task not in THESIS_PRESETS:
            raise RegionsError(f"the thesis has no region preset for task {task!r}; use "
                               f"regions.layout: auto, or one of the tasks "
                               f"{sorted(THESIS_PRESETS)}, or a mapping of channel lists")
        layout = preset_layout(THESIS_PRESETS[task], names, f"thesis/{task}", min_channels)
    else:
        layout = preset_layout(dict(setting), names, "custom", min_channels)
    if not layout.regions:
        raise RegionsError(f"no region of layout {layout.name!r} has a channel of these data "
                           f"({names[:6]}...); use regions.layout: auto")
    return layout

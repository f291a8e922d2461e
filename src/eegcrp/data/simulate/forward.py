"""Forward model of the simulator: electrode geometry, sources and dipole potentials.

Electrodes are the 10-05 positions of the ``standard_1005`` montage projected onto a sphere
fitted to them (radius ~10 cm). Sources are current dipoles inside that sphere, placed below
an anchor electrode at a given depth (fraction of the radius), radially oriented unless
stated. Their scalp potential is the exact solution for a dipole in a *homogeneous*
conducting sphere (:func:`dipole_potentials`). Each pattern is scaled so that its largest
absolute value over all 343 10-05 electrodes is 1, so amplitudes mean "µV at the peak
electrode" for any channel subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import mne
import numpy as np

from ..base import DataError
from ..montage import make_montage

__all__ = [
    "CHANNEL_PRESETS",
    "CHANNEL_THRESHOLD",
    "FORWARD_MODEL",
    "SOURCES",
    "SOURCE_INDEX",
    "Source",
    "dipole_potentials",
    "electrode_units",
    "montage",
    "nominal_patterns",
    "patterns",
    "resolve_channels",
    "source_geometry",
]

#: Channel presets: ``standard_64`` is the 64-electrode 10-10 layout of BioSemi-style caps,
#: ``actichamp_32`` the 32-electrode actiCAP layout, ``10-20_19`` the classic 10-20 set
#: (modern names T7/T8/P7/P8), ``c3cz_c4`` the three motor electrodes of BCI IV 2b.
CHANNEL_PRESETS: dict[str, tuple[str, ...]] = {
    "standard_64": (
        "Fp1", "AF7", "AF3", "F1", "F3", "F5", "F7", "FT7", "FC5", "FC3", "FC1", "C1",
        "C3", "C5", "T7", "TP7", "CP5", "CP3", "CP1", "P1", "P3", "P5", "P7", "P9",
        "PO7", "PO3", "O1", "Iz", "Oz", "POz", "Pz", "CPz", "Fpz", "Fp2", "AF8", "AF4",
        "AFz", "Fz", "F2", "F4", "F6", "F8", "FT8", "FC6", "FC4", "FC2", "FCz", "Cz",
        "C2", "C4", "C6", "T8", "TP8", "CP6", "CP4", "CP2", "P2", "P4", "P6", "P8",
        "P10", "PO8", "PO4", "O2",
    ),
    "actichamp_32": (
        "Fp1", "Fz", "F3", "F7", "FT9", "FC5", "FC1", "C3", "T7", "TP9", "CP5", "CP1",
        "Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "TP10", "CP6", "CP2", "Cz", "C4",
        "T8", "FT10", "FC6", "FC2", "F4", "F8", "Fp2",
    ),
    "10-20_19": (
        "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
        "P3", "Pz", "P4", "P8", "O1", "O2",
    ),
    "c3cz_c4": ("C3", "Cz", "C4"),
}

#: Electrodes with at least this fraction of a source's peak |pattern| are its channels.
CHANNEL_THRESHOLD = 0.5
FORWARD_MODEL = (
    "current dipoles in a homogeneous conducting sphere fitted to the standard_1005 "
    "electrode positions (exact Legendre-series potential, no skull layer; sources placed "
    "at 0.45-0.65 of the radius to mimic skull smearing); patterns scaled to a peak |value| "
    "of 1 over all 10-05 electrodes"
)


# =========================================================================== geometry
@dataclass(frozen=True)
class _Head:
    names: tuple[str, ...]
    unit: np.ndarray  # (n_electrodes, 3) directions from the sphere centre
    radius: float  # metres
    index: dict[str, int]  # lower-case name -> row


def _fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points: |x|^2 = 2 c.x + (R^2 - |c|^2)."""
    design = np.column_stack([2 * points, np.ones(len(points))])
    target = np.sum(points**2, axis=1)
    sol, *_ = np.linalg.lstsq(design, target, rcond=None)
    center = sol[:3]
    return center, float(np.sqrt(sol[3] + center @ center))


@lru_cache(maxsize=1)
def _head() -> _Head:
    positions = make_montage("standard_1005").get_positions()["ch_pos"]
    names = tuple(positions)
    xyz = np.array([positions[n] for n in names], dtype=np.float64)
    center, radius = _fit_sphere(xyz)
    rel = xyz - center
    unit = rel / np.linalg.norm(rel, axis=1, keepdims=True)
    unit.setflags(write=False)
    return _Head(names, unit, radius, {n.lower(): i for i, n in enumerate(names)})


def electrode_units(channels: Sequence[str]) -> np.ndarray:
    """Unit vectors (n_channels, 3) of 10-05 electrodes on the fitted sphere."""
    head = _head()
    return head.unit[[head.index[c.lower()] for c in channels]]


def resolve_channels(channels: str | Sequence[str]) -> list[str]:
    """Channel names of a preset or a list of 10-05 names (case-insensitive).

    Raises
    ------
    DataError
        For an unknown preset, unknown or duplicate electrode names.
    """
    if isinstance(channels, str):
        if channels not in CHANNEL_PRESETS:
            raise DataError(
                f"simulated: unknown channel preset {channels!r}; use one of "
                f"{list(CHANNEL_PRESETS)} or a list of 10-05 electrode names"
            )
        return list(CHANNEL_PRESETS[channels])
    head = _head()
    names = [str(c) for c in channels]
    if not names:
        raise DataError("simulated: the channel list is empty; name at least one electrode")
    unknown = [c for c in names if c.lower() not in head.index]
    if unknown:
        raise DataError(
            f"simulated: channel(s) {unknown} are not 10-05 electrode names; use names of "
            "the standard_1005 montage (e.g. 'C3', 'FCz', 'PO7'; mne.channels."
            "make_standard_montage('colin27_1005').ch_names lists them) or a preset: "
            f"{list(CHANNEL_PRESETS)}"
        )
    canonical = [head.names[head.index[c.lower()]] for c in names]
    dup = sorted({c for c in canonical if canonical.count(c) > 1})
    if dup:
        raise DataError(f"simulated: channel(s) {dup} are listed twice; list each once")
    return canonical


def dipole_potentials(
    electrodes: np.ndarray, positions: np.ndarray, moments: np.ndarray, tol: float = 1e-12
) -> np.ndarray:
    """Scalp potentials of current dipoles in a homogeneous unit sphere.

    Uses the Legendre expansion of the potential on the surface of a homogeneous sphere
    (radius 1) of a dipole with moment ``p`` at ``r0`` (``|r0| = f < 1``)::

        V(e) ∝ sum_n (2n+1)/n f^(n-1) [n (p.u) P_n(x) + (p.e - (p.u) x) P_n'(x)]

    with ``u = r0/|r0|`` and ``x = e.u``: the radial part of the moment drives the zonal
    terms, the tangential part their derivative. For ``f = 0`` this is ``3 p.e``, three
    times the potential in an infinite medium.

    Parameters
    ----------
    electrodes : ndarray, shape (n_electrodes, 3)
        Unit vectors of the electrodes.
    positions : ndarray, shape (n_dipoles, 3)
        Dipole positions in units of the sphere radius (norm < 1).
    moments : ndarray, shape (n_dipoles, 3)
        Dipole moments (orientation x strength).

    Returns
    -------
    ndarray, shape (n_electrodes, n_dipoles)
        Potentials in units of ``|p| / (4 pi sigma R^2)``.
    """
    e = np.asarray(electrodes, dtype=np.float64)
    r0 = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    p = np.atleast_2d(np.asarray(moments, dtype=np.float64))
    f = np.linalg.norm(r0, axis=1)
    if np.any(f >= 0.99):
        raise ValueError("dipoles must lie inside the sphere (|position| < 0.99)")
    u = np.where(f[:, None] > 0, r0 / np.where(f > 0, f, 1.0)[:, None], [0.0, 0.0, 1.0])
    x = np.clip(e @ u.T, -1.0, 1.0)
    pu = np.sum(p * u, axis=1)[None, :]
    tangential = e @ p.T - pu * x
    p_prev, p_cur = np.ones_like(x), x  # P_0, P_1
    d_prev, d_cur = np.zeros_like(x), np.ones_like(x)  # P_0', P_1'
    total = np.zeros_like(x)
    f_pow = np.ones_like(f)
    n = 1
    while True:
        total += (2 * n + 1) / n * f_pow * (n * pu * p_cur + tangential * d_cur)
        f_pow = f_pow * f
        # |P_n| <= 1 and |P_n'| <= n(n+1)/2 bound the remaining terms
        if np.max(f_pow) * (n + 2) ** 2 < tol or n > 5000:
            break
        p_prev, p_cur = p_cur, ((2 * n + 1) * x * p_cur - n * p_prev) / (n + 1)
        d_prev, d_cur = d_cur, d_prev + (2 * n + 1) * p_prev
        n += 1
    return total


# =========================================================================== sources
@dataclass(frozen=True)
class Source:
    """A dipole source: below ``anchor`` at ``depth`` radii, radial unless ``orient``."""

    name: str
    anchor: str  # electrode (or "eyes") above the source
    depth: float  # distance from the centre as a fraction of the radius
    region: str
    orient: str = "radial"  # "radial", "lateral" (+x, to the right) or an electrode name


_BRAINSOURCES = (
    Source("sensorimotor_left", "C3", 0.55, "left sensorimotor cortex (hand area)"),
    Source("sensorimotor_right", "C4", 0.55, "right sensorimotor cortex (hand area)"),
    Source("parietooccipital_left", "PO7", 0.55, "left parieto-occipital cortex"),
    Source("parietooccipital_right", "PO8", 0.55, "right parieto-occipital cortex"),
    Source("posterior_midline", "POz", 0.5, "posterior midline (parieto-occipital) cortex"),
    Source("frontal_midline", "Fz", 0.45, "frontal midline (medial prefrontal/cingulate)"),
)
_ARTIFACTSOURCES = (
    Source("blink", "eyes", 0.65, "eyes (vertical EOG, frontopolar)", orient="Fpz"),
    Source("saccade", "eyes", 0.6, "eyes (horizontal EOG, lateral frontal)", orient="lateral"),
    Source("muscle_left", "T7", 0.65, "left temporalis muscle"),
    Source("muscle_right", "T8", 0.65, "right temporalis muscle"),
)
#: How far below the frontopolar electrodes the eye sources lie (in z, sphere radii).
_EYES_DROP = 0.35
SOURCES = _BRAINSOURCES + _ARTIFACTSOURCES
SOURCE_INDEX = {s.name: i for i, s in enumerate(SOURCES)}


def source_geometry(source: Source) -> tuple[np.ndarray, np.ndarray]:
    """Nominal position (sphere radii) and unit orientation of a source."""
    head = _head()
    if source.anchor == "eyes":
        # below and in front of the frontopolar electrodes
        direction = head.unit[head.index["fpz"]] + np.array([0.0, 0.0, -_EYES_DROP])
    else:
        direction = head.unit[head.index[source.anchor.lower()]].copy()
    direction /= np.linalg.norm(direction)
    if source.orient == "radial":
        orient = direction.copy()
    elif source.orient == "lateral":
        orient = np.array([1.0, 0.0, 0.0])
    else:
        orient = head.unit[head.index[source.orient.lower()]].copy()
    return source.depth * direction, orient / np.linalg.norm(orient)


def patterns(positions: np.ndarray, orients: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """(n_channels, n_sources) patterns, each scaled to peak |value| 1 over all 10-05 sites."""
    head = _head()
    full = dipole_potentials(head.unit, positions, orients)
    full /= np.max(np.abs(full), axis=0, keepdims=True)
    rows = [head.index[c.lower()] for c in channels]
    return full[rows]


def nominal_patterns(channels: Sequence[str]) -> np.ndarray:
    geometry = [source_geometry(s) for s in SOURCES]
    return patterns(
        np.array([g[0] for g in geometry]), np.array([g[1] for g in geometry]), channels
    )



@lru_cache(maxsize=1)
def _montage_cached() -> mne.channels.DigMontage:
    return make_montage("standard_1005")


def montage() -> mne.channels.DigMontage:
    """The simulator's electrode positions (a copy of the standard_1005 template)."""
    return _montage_cached().copy()

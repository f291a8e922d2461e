"""Per-subject alignment of the windows before the model (``training.alignment``).

Cross-subject decoders suffer from subjects whose signals differ in scale and spatial
covariance. Each method here is a fixed linear map ``W_s`` (channels x channels) per subject,
computed from that subject's windows alone and without labels, applied to every window of
the subject before the per-window z-score:

* ``euclidean`` (Euclidean alignment, He & Wu 2019, IEEE TBME 67(2)): ``W_s = R_s^{-1/2}``
  with ``R_s`` the mean spatial covariance ``X X^T / T`` of the subject's windows, so the
  aligned windows' mean covariance is the identity. Common-average-referenced data have
  rank ``C - 1`` (the channel sum is zero); the inverse square root is then taken on the
  covariance's range (a pseudo-inverse square root) and the mean covariance becomes the
  projector onto that range, the identity of the data's own subspace.
* ``standardize``: ``W_s = diag(1 / std_c)``, each channel scaled by its standard deviation
  over the subject's samples.
* ``none``: no map.

The held-out subject's map uses its own unlabelled windows: the alignment is transductive
(the test subject's data, never its labels, inform its map), as in He & Wu. Because ``W_s``
is linear, explanations are mapped back to the sensors exactly
(:mod:`eegcrp.relevance.alignment`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from eegcrp.errors import TrainingError

__all__ = ["ALIGNMENTS", "apply_maps", "subject_maps"]

#: Alignment methods of ``training.alignment``.
ALIGNMENTS = ("none", "euclidean", "standardize")


def _inverse_sqrt(cov: np.ndarray, rtol: float) -> np.ndarray:
    """Symmetric (pseudo-)inverse square root: eigenvalues below ``rtol * max`` are zero."""
    values, vectors = np.linalg.eigh(cov)
    keep = values > rtol * max(float(values.max()), 0.0)
    inv = np.zeros_like(values)
    inv[keep] = values[keep] ** -0.5
    return (vectors * inv) @ vectors.T


def subject_maps(x: np.ndarray, groups: np.ndarray, method: str, rtol: float = 1e-8
                 ) -> dict[str, np.ndarray]:
    """The alignment map of every subject.

    Parameters
    ----------
    x : ndarray, shape (n_windows, n_channels, n_times)
        Windows in volts (before any normalisation).
    groups : ndarray of str, shape (n_windows,)
        Subject of each window.
    method : {'none', 'euclidean', 'standardize'}
    rtol : float
        Relative eigenvalue threshold of the pseudo-inverse (``euclidean``).

    Returns
    -------
    dict
        Subject -> ``W_s`` (n_channels, n_channels) float64; empty for ``none``.
    """
    if method not in ALIGNMENTS:
        raise TrainingError(f"unknown alignment {method!r}; use one of {list(ALIGNMENTS)}")
    if method == "none":
        return {}
    groups = np.asarray(groups).astype(str)
    maps = {}
    for subject in dict.fromkeys(groups.tolist()):
        xs = np.asarray(x[groups == subject], dtype=np.float64)
        if method == "euclidean":
            cov = np.einsum("nct,ndt->cd", xs, xs) / (xs.shape[0] * xs.shape[2])
            if not np.all(np.isfinite(cov)) or not np.any(cov):
                raise TrainingError(f"subject {subject}: the windows have no variance; "
                                    "remove flat subjects or use training.alignment: none")
            maps[subject] = _inverse_sqrt(cov, rtol)
        else:
            std = xs.transpose(1, 0, 2).reshape(xs.shape[1], -1).std(axis=1)
            if np.any(std <= 0):
                flat = np.flatnonzero(std <= 0).tolist()
                raise TrainingError(f"subject {subject}: channel(s) {flat} are flat; remove "
                                    "them or use training.alignment: none")
            maps[subject] = np.diag(1.0 / std)
    return maps


def apply_maps(x: np.ndarray, groups: np.ndarray, maps: Mapping[str, np.ndarray]
               ) -> np.ndarray:
    """``W_s @ window`` for every window (float32); unchanged when ``maps`` is empty."""
    if not maps:
        return x
    groups = np.asarray(groups).astype(str)
    out = np.empty(x.shape, dtype=np.float32)
    for subject, w in maps.items():
        rows = groups == subject
        out[rows] = np.einsum("cd,ndt->nct", w, np.asarray(x[rows], np.float64))
    missing = sorted(set(groups.tolist()) - set(maps))
    if missing:
        raise TrainingError(f"no alignment map for subject(s) {missing}")
    return out

"""Sensor-space relevance of aligned models: the alignment as an exact linear virtual layer.

With ``training.alignment`` the model sees ``z = (W_s x - m) / s``: the subject's alignment
map ``W_s`` (:mod:`eegcrp.training.alignment`) applied to the sensor-space window ``x``
(volts, after the common average reference), then the per-window z-score with the window's
own mean ``m`` and standard deviation ``s``. Given ``s`` (a property of the window, as the
z-score treats it), ``z = A x`` is linear, ``A = (I - J/n)(W_s (x) I_T) / s`` with ``J/n``
the mean over the ``n`` channel-time entries. Prepending that layer to the network and
propagating the input relevance ``R_z`` through it with the z-rule gives

    R_x = x * A^T (R_z / z) = x * W_s^T (q - mean(q)) / s,   q = R_z / z,

whose sum over channels and time is ``<A x, q> = sum(R_z)``: relevance is conserved exactly,
up to the stabiliser that only touches entries with ``|z| < eps`` (as in the DFT layer).
Heatmaps, spectra and topographies of aligned models are therefore stored in sensor space,
comparable with those of unaligned models and with the montage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spectral import EPS

__all__ = ["SensorLayer", "sensor_relevance"]


def _stabilised(r: np.ndarray, z: np.ndarray, eps: float) -> np.ndarray:
    denom = np.where(np.abs(z) < eps, np.where(z < 0, -eps, eps), z)
    return r / denom


def sensor_relevance(x: np.ndarray, z: np.ndarray, relevance: np.ndarray, w: np.ndarray,
                     scale: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Relevance of the sensor-space windows ``x`` through ``z = (W x - mean) / scale``.

    Parameters
    ----------
    x : ndarray, shape (n, C, T)
        Sensor-space windows.
    z : ndarray, shape (n, C, T)
        The model's input for them.
    relevance : ndarray, shape (n, C, T)
        Relevance of ``z`` (an LRP/CRP heatmap).
    w : ndarray, shape (n, C, C) or (C, C)
        Alignment map of each window's subject.
    scale : ndarray, shape (n,)
        The z-score's standard deviation of each window.

    Returns
    -------
    ndarray of float64, shape (n, C, T)
        Sensor-space relevance; sums per window to the sum of ``relevance``.
    """
    x = np.asarray(x, np.float64)
    q = _stabilised(np.asarray(relevance, np.float64), np.asarray(z, np.float64), eps)
    q = q - q.mean(axis=(1, 2), keepdims=True)
    w = np.asarray(w, np.float64)
    back = np.einsum("dc,ndt->nct", w, q) if w.ndim == 2 else np.einsum("ndc,ndt->nct", w, q)
    return x * back / np.asarray(scale, np.float64)[:, None, None]


@dataclass
class SensorLayer:
    """The sensor-space windows of a fold's candidates and the map to the model's input.

    Attributes
    ----------
    x : ndarray, shape (n, C, T)
        Sensor-space windows (volts).
    maps : ndarray, shape (n_subjects, C, C)
        Alignment map per subject.
    subject_index : ndarray of int, shape (n,)
        Row of ``maps`` for each window.
    scale : ndarray, shape (n,)
        The z-score's standard deviation of each aligned window.
    """

    x: np.ndarray
    maps: np.ndarray
    subject_index: np.ndarray
    scale: np.ndarray

    def to_sensor(self, rows: np.ndarray, z: np.ndarray, relevance: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Sensor-space windows and relevance of the candidate rows ``rows``."""
        rows = np.asarray(rows)
        x = self.x[rows]
        return x, sensor_relevance(x, z, relevance, self.maps[self.subject_index[rows]],
                                   self.scale[rows])

"""ICA virtual inspection layer: relevance per independent component (and frequency).

A window ``x`` (channels x time, volts, after CAR) is exactly the sum of one contribution
per kept component and a residual (:mod:`.ica`)::

    x = sum_k a_k s_k + r,     s = U (x - m),     r = x - A s

(``r`` holds the PCA mean and the principal components not kept). The model sees the
per-window z-score ``z = (x - mu) / sigma`` (:func:`eegcrp.training.normalize_windows`),
with the window's own mean ``mu`` over channels x time and standard deviation ``sigma``.
Given ``mu`` and ``sigma`` it is linear in the terms, and subtracting each term's own window
mean splits ``mu`` among them::

    z = sum_k z_k + z_r,   z_k = (a_k s_k - mean(a_k s_k)) / sigma,
                           z_r = (r - mean(r)) / sigma.

Prepending this layer to the network and propagating the input relevance ``R`` through it
with the z-rule (as the DFT layer, :mod:`eegcrp.relevance.spectral`) gives, with
``q = R / z`` (stabilised where ``|z| < eps``)::

    R_k = sum_{c,t} z_k q = (sum_t s_k(t) (A^T q)_k(t) - mean(a_k s_k) sum q) / sigma,
    R_r = sum_{c,t} z_r q,

and ``sum_k R_k + R_r = sum_{c,t} z q = sum R``: relevance is conserved exactly.
For aligned models the explain store holds relevance of the sensor-space window ``x``
itself (``input_space = "sensor"``); then ``z = x``, the terms are ``a_k s_k`` and ``r``
and no mean is split.

Component x frequency relevance is the same z-rule through one combined linear layer, the
inverse DFT of each term (``z_k = sum_j c_kj b_j``): with ``S_k = rfft(s_k)`` and
``M_k = rfft((A^T q)_k)``, ``R_k(f) = w_f / (T sigma) Re(S_k(f) conj(M_k(f)))`` minus the
mean term at 0 Hz, which sums over bins to ``R_k`` (Parseval). It costs two FFTs per
component, not one per component and channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..relevance.spectral import EPS, rfft_weights

__all__ = ["ICARelevance", "ica_relevance"]


def _stabilised(r: np.ndarray, z: np.ndarray, eps: float) -> np.ndarray:
    denom = np.where(np.abs(z) < eps, np.where(z < 0, -eps, eps), z)
    return r / denom


@dataclass
class ICARelevance:
    """Relevance of the ICA terms of each window.

    Attributes
    ----------
    component : ndarray (n, K)
        Relevance of each component's contribution.
    residual : ndarray (n,)
        Relevance of the residual term (mean + components not kept).
    component_spectrum, residual_spectrum : ndarray (n, K, F), (n, F) | None
        The same per DFT bin (sums over bins to the two above).
    total : ndarray (n,)
        The heatmap's total relevance (sum over channels and time).
    error : ndarray (n,)
        ``|sum_k R_k + R_r - total| / sum |R|``: the conservation error of each window.
    """

    component: np.ndarray
    residual: np.ndarray
    component_spectrum: np.ndarray | None
    residual_spectrum: np.ndarray | None
    total: np.ndarray
    error: np.ndarray


def ica_relevance(
    x: np.ndarray,
    relevance: np.ndarray,
    unmixing: np.ndarray,
    mixing: np.ndarray,
    mean: np.ndarray,
    *,
    standardized: bool = True,
    ddof: int = 0,
    spectra: bool = True,
    eps: float = EPS,
) -> ICARelevance:
    """Relevance of every ICA component of every window by the ICA virtual layer.

    Parameters
    ----------
    x : ndarray (n, C, T)
        The windows in volts (CAR, not z-scored).
    relevance : ndarray (n, C, T)
        Input relevance: of the model input ``z`` (``standardized=True``) or of ``x``
        itself (``standardized=False``, aligned models' sensor-space heatmaps).
    unmixing, mixing, mean : ndarray (K, C), (C, K), (C,)
        The subject's decomposition (:class:`eegcrp.sources.SubjectICA`).
    standardized : bool
        Whether the relevance belongs to the per-window z-score of ``x``.
    ddof : int
        Degrees of freedom of the z-score's standard deviation (the model's).
    spectra : bool
        Also the relevance per component and DFT bin.
    eps : float
        Stabiliser of ``R / z``.

    Returns
    -------
    ICARelevance
    """
    x = np.asarray(x, np.float64)
    rel = np.asarray(relevance, np.float64)
    if x.shape != rel.shape or x.ndim != 3:
        raise ValueError(f"x {x.shape} and relevance {rel.shape} must be equal (n, C, T)")
    u, a, m = (np.asarray(v, np.float64) for v in (unmixing, mixing, mean))
    src = np.einsum("kc,nct->nkt", u, x - m[None, :, None])  # (n, K, T)
    resid = x - np.einsum("ck,nkt->nct", a, src)
    if standardized:
        mu = x.mean(axis=(1, 2), keepdims=True)
        sigma = x.std(axis=(1, 2), ddof=ddof, keepdims=True)
        sigma[~(sigma > 0)] = 1.0  # a constant window is all zeros (normalize_windows)
        z = (x - mu) / sigma
        z_res = (resid - resid.mean(axis=(1, 2), keepdims=True)) / sigma
        # window mean of a_k s_k over channels x time = mean_c(a_k) * mean_t(s_k)
        term_mean = a.mean(axis=0)[None, :] * src.mean(axis=2)  # (n, K)
        scale = sigma[:, 0, 0]
    else:
        z, z_res = x, resid
        term_mean = np.zeros(src.shape[:2])
        scale = np.ones(len(x))
    q = _stabilised(rel, z, eps)
    back = np.einsum("ck,nct->nkt", a, q)  # (A^T q)_k(t)
    q_sum = q.sum(axis=(1, 2))
    comp = (np.einsum("nkt,nkt->nk", src, back) - term_mean * q_sum[:, None]) / scale[:, None]
    res = (z_res * q).sum(axis=(1, 2))
    total = rel.sum(axis=(1, 2))
    magnitude = np.abs(rel).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.where(magnitude > 0,
                         np.abs(comp.sum(1) + res - total) / np.where(magnitude > 0,
                                                                      magnitude, 1), 0.0)
    comp_spec = res_spec = None
    if spectra:
        n_times = x.shape[-1]
        w = rfft_weights(n_times) / n_times
        s_f, b_f = np.fft.rfft(src, axis=-1), np.fft.rfft(back, axis=-1)
        comp_spec = (s_f.real * b_f.real + s_f.imag * b_f.imag) * w / scale[:, None, None]
        comp_spec[..., 0] -= term_mean * q_sum[:, None] / scale[:, None]
        r_f, q_f = np.fft.rfft(z_res, axis=-1), np.fft.rfft(q, axis=-1)
        res_spec = ((r_f.real * q_f.real + r_f.imag * q_f.imag) * w).sum(axis=1)
    return ICARelevance(comp, res, comp_spec, res_spec, total, error)

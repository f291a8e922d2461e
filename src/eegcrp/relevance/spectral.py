"""DFT virtual inspection layer: relevance per channel and frequency (Vielhaben et al. 2024).

A window ``x`` (per channel, ``N`` samples) is exactly the inverse of its orthonormal real
DFT: with the basis

* ``b_0[n] = 1 / sqrt(N)``,
* ``b_k^cos[n] = sqrt(2/N) cos(2 pi k n / N)`` and ``b_k^sin[n] = sqrt(2/N) sin(2 pi k n / N)``
  for ``0 < k < N/2``,
* for even ``N`` the Nyquist row ``b_{N/2}[n] = (-1)^n / sqrt(N)`` (the thesis' upstream code
  used a constant row here, which is not part of any inverse DFT),

``x_n = sum_j c_j b_j[n]`` with ``c_j = <x, b_j>`` (``N`` rows in all, for even and odd ``N``).
Treating this inverse transform as a linear layer in front of the network and propagating the
input relevance ``R_n`` through it with the z-rule gives

    R_j = c_j * sum_n b_j[n] * R_n / x_n,

and the relevance of frequency bin ``k`` is the sum over its cosine and sine rows. With
``q_n = R_n / x_n`` both sums are DFT coefficients, so with ``X = rfft(x)``, ``Q = rfft(q)``::

    R_k = w_k / N * Re(X_k * conj(Q_k)),   w_0 = w_{N/2} = 1 (even N), w_k = 2 otherwise,

an O(N log N) computation (no dense matrix; :mod:`tests.test_spectral` checks it against
one). Summed over ``k`` it is ``sum_n x_n q_n = sum_n R_n``: the layer conserves relevance
exactly, up to the stabiliser ``eps`` that only touches samples with ``|x_n| < eps``.

Bin frequencies are ``k * sfreq / N`` (:func:`rfft_freqs`), so nothing assumes a particular
sampling rate or window length (the thesis hard-coded 3 bins per Hz). :func:`band_sum` and
:func:`band_mean` aggregate bins into bands ``[low, high)``.

The short-time variant (:func:`stdft_relevance`) splits the window into overlapping
segments with Hann weights normalised to sum to one at every sample (a partition of unity),
distributes ``R_n`` to the segments in proportion to the weights (z-rule through
``x = sum_m w_m x``) and applies the DFT layer within each segment. Relevance is again
conserved exactly: summed over segments and bins it equals ``sum_n R_n``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..config import DEFAULT_BANDS

__all__ = [
    "DEFAULT_BANDS",
    "band_mean",
    "band_sum",
    "dft_relevance",
    "rfft_freqs",
    "rfft_weights",
    "spectrum",
    "stdft_relevance",
]

#: Stabiliser of ``R_n / x_n``: only samples with ``|x_n|`` below it are shifted.
EPS = 1e-12


def rfft_freqs(n_times: int, sfreq: float) -> np.ndarray:
    """Frequencies in Hz of the ``n_times // 2 + 1`` bins of a window of ``n_times`` samples."""
    return np.fft.rfftfreq(int(n_times), d=1.0 / float(sfreq))


def rfft_weights(n_times: int) -> np.ndarray:
    """Rows of the orthonormal real-DFT basis per bin: 1 for DC and Nyquist, else 2."""
    weights = np.full(n_times // 2 + 1, 2.0)
    weights[0] = 1.0
    if n_times % 2 == 0:
        weights[-1] = 1.0
    return weights


def spectrum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Orthonormal amplitude spectrum ``|c_k|`` along ``axis`` (float64).

    ``|c_k| = sqrt(c_k^cos² + c_k^sin²)``, so ``sum_k |c_k|² = sum_n x_n²`` (Parseval):
    ``spectrum(x) ** 2`` is the energy per bin.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    n = x.shape[-1]
    amp = np.abs(np.fft.rfft(x, axis=-1)) * np.sqrt(rfft_weights(n) / n)
    return np.moveaxis(amp, -1, axis)


def _stabilised_ratio(relevance: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """``R / x`` with ``|x| < eps`` replaced by ``+-eps`` (0 counts as positive)."""
    denom = np.where(np.abs(x) < eps, np.where(x < 0, -eps, eps), x)
    return relevance / denom


def dft_relevance(
    x: np.ndarray, relevance: np.ndarray, eps: float = EPS, axis: int = -1
) -> np.ndarray:
    """Relevance per frequency bin by the DFT virtual inspection layer.

    Parameters
    ----------
    x : ndarray, shape (..., n_times)
        The signal the relevance belongs to (the model's input window).
    relevance : ndarray, same shape
        Relevance of each sample (an LRP/CRP input heatmap).
    eps : float
        Stabiliser of ``R_n / x_n`` (only samples with ``|x_n| < eps`` are affected).
    axis : int
        Time axis.

    Returns
    -------
    ndarray of float64, shape (..., n_times // 2 + 1)
        Relevance per bin (frequencies from :func:`rfft_freqs`); sums over bins to the
        relevance summed over time.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    relevance = np.moveaxis(np.asarray(relevance, dtype=np.float64), axis, -1)
    if x.shape != relevance.shape:
        raise ValueError(f"x {x.shape} and relevance {relevance.shape} differ in shape")
    n = x.shape[-1]
    q = _stabilised_ratio(relevance, x, eps)
    spec_x = np.fft.rfft(x, axis=-1)
    spec_q = np.fft.rfft(q, axis=-1)
    out = (spec_x.real * spec_q.real + spec_x.imag * spec_q.imag) * (rfft_weights(n) / n)
    return np.moveaxis(out, -1, axis)


def _hann(length: int) -> np.ndarray:
    """Periodic Hann window (sums to one at a hop of half its length)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)


def stdft_relevance(
    x: np.ndarray,
    relevance: np.ndarray,
    sfreq: float,
    window: float = 1.0,
    eps: float = EPS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time x frequency relevance by a short-time DFT virtual inspection layer.

    Parameters
    ----------
    x, relevance : ndarray, shape (..., n_times)
        Signal and its relevance (time last).
    sfreq : float
        Sampling rate in Hz.
    window : float
        Segment length in seconds (clipped to the window; the hop is half a segment).
    eps : float
        Stabiliser of ``R_n / x_n``.

    Returns
    -------
    relevance : ndarray, shape (..., n_segments, n_freqs)
        Relevance per segment and bin; sums to the relevance summed over time.
    amplitude : ndarray, shape (..., n_segments, n_freqs)
        Orthonormal amplitude spectrum of each weighted segment.
    times : ndarray, shape (n_segments,)
        Segment centres in seconds from the window start.
    freqs : ndarray, shape (n_freqs,)
        Bin frequencies in Hz.
    """
    x = np.asarray(x, dtype=np.float64)
    relevance = np.asarray(relevance, dtype=np.float64)
    if x.shape != relevance.shape:
        raise ValueError(f"x {x.shape} and relevance {relevance.shape} differ in shape")
    n = x.shape[-1]
    seg = int(min(max(2, round(window * sfreq)), n))
    hop = max(1, seg // 2)
    n_seg = int(np.ceil((n - 1) / hop)) + 1
    # Segment m covers samples [m * hop - seg // 2, m * hop - seg // 2 + seg).
    starts = np.arange(n_seg) * hop - seg // 2
    pad_left = seg // 2
    total = pad_left + (n_seg - 1) * hop + seg  # padded length covering all segments
    idx = starts[:, None] + pad_left + np.arange(seg)[None, :]  # (n_seg, seg) in padded axis
    weights = np.zeros((n_seg, total))
    np.put_along_axis(weights, idx, np.broadcast_to(_hann(seg), idx.shape), axis=1)
    coverage = weights[:, pad_left : pad_left + n].sum(axis=0)
    weights[:, pad_left : pad_left + n] /= coverage  # partition of unity on the window
    valid = np.zeros(total, dtype=bool)
    valid[pad_left : pad_left + n] = True
    weights[:, ~valid] = 0.0
    seg_w = np.take_along_axis(weights, idx, axis=1)  # (n_seg, seg)

    q = _stabilised_ratio(relevance, x, eps)
    lead = x.shape[:-1]
    xp = np.zeros((*lead, total))
    qp = np.zeros((*lead, total))
    xp[..., pad_left : pad_left + n] = x
    qp[..., pad_left : pad_left + n] = q
    xs = xp[..., idx] * seg_w  # (..., n_seg, seg): the weighted segments w_m * x
    qs = qp[..., idx]
    spec_x = np.fft.rfft(xs, axis=-1)
    spec_q = np.fft.rfft(qs, axis=-1)
    w = rfft_weights(seg)
    rel = (spec_x.real * spec_q.real + spec_x.imag * spec_q.imag) * (w / seg)
    amp = np.abs(spec_x) * np.sqrt(w / seg)
    times = (starts + seg // 2) / float(sfreq)
    return rel, amp, times, rfft_freqs(seg, sfreq)


def _band_masks(freqs: np.ndarray, bands: Mapping[str, tuple[float, float]]) -> np.ndarray:
    freqs = np.asarray(freqs, dtype=np.float64)
    return np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in bands.values()])


def band_sum(
    values: np.ndarray,
    freqs: np.ndarray,
    bands: Mapping[str, tuple[float, float]] | None = None,
    axis: int = -1,
) -> tuple[np.ndarray, list[str]]:
    """Sum ``values`` over the bins of each band ``[low, high)`` (for relevance).

    Returns the aggregated array (the frequency ``axis`` replaced by one entry per band, in
    the order of ``bands``) and the band names. A band without bins sums to 0.
    """
    bands = dict(DEFAULT_BANDS if bands is None else bands)
    masks = _band_masks(freqs, bands).astype(np.float64)
    values = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    return np.moveaxis(values @ masks.T, -1, axis), list(bands)


def band_mean(
    values: np.ndarray,
    freqs: np.ndarray,
    bands: Mapping[str, tuple[float, float]] | None = None,
    axis: int = -1,
) -> tuple[np.ndarray, list[str]]:
    """Mean of ``values`` over the bins of each band ``[low, high)`` (for spectra, power).

    A band without bins gives NaN.
    """
    bands = dict(DEFAULT_BANDS if bands is None else bands)
    masks = _band_masks(freqs, bands).astype(np.float64)
    counts = masks.sum(axis=1)
    values = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (values @ masks.T) / counts
    return np.moveaxis(out, -1, axis), list(bands)

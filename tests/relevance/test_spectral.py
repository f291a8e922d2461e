"""DFT virtual inspection layer (eegcrp.relevance.spectral): conservation, bins, bands."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.relevance.spectral import (
    DEFAULT_BANDS,
    band_mean,
    band_sum,
    dft_relevance,
    rfft_freqs,
    spectrum,
    stdft_relevance,
)

LENGTHS = [2, 3, 7, 8, 128, 384, 385]


def dense_basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal real-DFT basis as a dense (n, n) matrix, and each row's frequency bin.

    Rows: DC; cosine and sine rows of bins 1 .. (n-1)//2; for even n the Nyquist row
    (-1)^k / sqrt(n). Test reference only (O(n^2)).
    """
    t = np.arange(n)
    rows, bins = [np.full(n, 1 / np.sqrt(n))], [0]
    for k in range(1, (n - 1) // 2 + 1):
        rows.append(np.sqrt(2 / n) * np.cos(2 * np.pi * k * t / n))
        rows.append(np.sqrt(2 / n) * np.sin(2 * np.pi * k * t / n))
        bins += [k, k]
    if n % 2 == 0:
        rows.append((-1.0) ** t / np.sqrt(n))
        bins.append(n // 2)
    return np.array(rows), np.array(bins)


def dense_relevance(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """z-rule through x = B^T c, summed per bin (the definition, with a dense matrix)."""
    n = x.shape[-1]
    basis, bins = dense_basis(n)
    coef = x @ basis.T  # (..., rows)
    row_rel = coef * ((r / x) @ basis.T)  # R_j = c_j * sum_n B_jn R_n / x_n
    out = np.zeros((*x.shape[:-1], n // 2 + 1))
    for j, k in enumerate(bins):
        out[..., k] += row_rel[..., j]
    return out


@pytest.mark.parametrize("n", LENGTHS)
def test_dense_basis_is_orthonormal_inverse(n):
    basis, _ = dense_basis(n)
    assert np.allclose(basis @ basis.T, np.eye(n), atol=1e-12)
    x = np.random.default_rng(n).standard_normal(n)
    assert np.allclose(basis.T @ (basis @ x), x)


@pytest.mark.parametrize("n", LENGTHS)
def test_relevance_is_conserved(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((5, 3, n))
    r = rng.standard_normal((5, 3, n)) * x  # LRP-like: relevance scales with the input
    spec = dft_relevance(x, r)
    assert spec.shape == (5, 3, n // 2 + 1)
    assert np.allclose(spec.sum(-1), r.sum(-1), rtol=1e-6, atol=0)
    r2 = rng.standard_normal((5, 3, n))  # any relevance, not only LRP-like
    assert np.allclose(dft_relevance(x, r2).sum(-1), r2.sum(-1), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("n", LENGTHS)
def test_fft_equals_dense_reference(n):
    rng = np.random.default_rng(100 + n)
    x = rng.standard_normal((4, n))
    r = rng.standard_normal((4, n)) * np.abs(x)
    assert np.allclose(dft_relevance(x, r), dense_relevance(x, r), rtol=1e-9, atol=1e-12)


def test_time_axis_argument_and_float32_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 2, 64)).astype(np.float32)
    r = (rng.standard_normal((6, 2, 64)) * x).astype(np.float32)
    moved = dft_relevance(np.moveaxis(x, -1, 0), np.moveaxis(r, -1, 0), axis=0)
    assert np.allclose(np.moveaxis(moved, 0, -1), dft_relevance(x, r))
    with pytest.raises(ValueError, match="shape"):
        dft_relevance(x, r[..., :-1])


@pytest.mark.parametrize(("n", "sfreq"), [(384, 128.0), (385, 128.0), (250, 250.0)])
def test_sinusoid_relevance_concentrates_in_its_bin(n, sfreq):
    freqs = rfft_freqs(n, sfreq)
    assert len(freqs) == n // 2 + 1
    assert np.isclose(freqs[1], sfreq / n) and freqs[-1] <= sfreq / 2
    k = int(np.argmin(np.abs(freqs - 10.0)))
    t = np.arange(n) / sfreq
    x = np.sin(2 * np.pi * freqs[k] * t + 0.3)
    r = x**2  # all of the signal is relevant, in proportion to its energy
    spec = dft_relevance(x, r)
    assert np.isclose(spec[k], r.sum(), rtol=1e-9)
    assert np.abs(np.delete(spec, k)).max() < 1e-9 * r.sum()


@pytest.mark.parametrize("n", [8, 384])
def test_nyquist_and_dc_rows(n):
    # (-1)^t lies entirely in the Nyquist bin (the thesis' upstream code used a constant
    # row there and put it nowhere); a constant lies entirely in DC.
    t = np.arange(n)
    for x, k in (((-1.0) ** t, n // 2), (np.full(n, 2.0), 0)):
        spec = dft_relevance(x, x**2)
        assert np.isclose(spec[k], (x**2).sum())
        assert np.abs(np.delete(spec, k)).max() < 1e-9


def test_zero_input_samples_are_stable():
    x = np.array([0.0, 1.0, -2.0, 0.0, 0.5, 1.5])
    r = x * np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # zero where x is zero
    spec = dft_relevance(x, r)
    assert np.all(np.isfinite(spec))
    assert np.isclose(spec.sum(), r.sum())


def test_spectrum_parseval():
    for n in (7, 8, 385):
        x = np.random.default_rng(n).standard_normal((3, n))
        amp = spectrum(x)
        assert amp.shape == (3, n // 2 + 1)
        assert np.allclose((amp**2).sum(-1), (x**2).sum(-1))


@pytest.mark.parametrize(("n", "window"), [(384, 1.0), (385, 1.0), (128, 0.5), (100, 2.0),
                                           (384, 0.3)])
def test_short_time_relevance_is_conserved(n, window):
    sfreq = 128.0
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, 3, n))
    r = rng.standard_normal((2, 3, n)) * x
    rel, amp, times, freqs = stdft_relevance(x, r, sfreq, window)
    seg = min(round(window * sfreq), n)
    assert rel.shape == (2, 3, len(times), seg // 2 + 1) == amp.shape
    assert np.allclose(freqs, rfft_freqs(seg, sfreq))
    assert times[0] == 0 and times[-1] >= (n - 1) / sfreq - 1e-12
    assert np.allclose(rel.sum((-1, -2)), r.sum(-1), rtol=1e-6, atol=0)


def test_short_time_sinusoid_localised_in_time_and_frequency():
    sfreq, n = 128.0, 512
    t = np.arange(n) / sfreq
    x = np.sin(2 * np.pi * 10 * t) + 0.01 * np.random.default_rng(0).standard_normal(n)
    r = np.where(t >= 2.0, x**2, 0.0)  # only the second half is relevant
    rel, _, times, freqs = stdft_relevance(x, r, sfreq, window=1.0)
    k = int(np.argmin(np.abs(freqs - 10)))
    by_freq = rel.sum(0)
    assert np.argmax(by_freq) == k
    assert by_freq[k] > 0.9 * r.sum()  # the step at 2 s leaks a little to other bins
    assert rel[times < 1.5].sum() < 1e-6 * r.sum()


def test_band_aggregation():
    freqs = rfft_freqs(384, 128.0)  # 1/3 Hz bins
    values = np.ones((2, len(freqs)))
    summed, names = band_sum(values, freqs)
    assert names == list(DEFAULT_BANDS)
    # [low, high): delta 1-4 Hz -> bins 3..11 (9 bins), gamma 30-60 -> 90 bins
    assert summed[0].tolist() == [9, 12, 12, 54, 90]
    mean, _ = band_mean(np.arange(len(freqs), dtype=float)[None] * np.ones((2, 1)), freqs,
                        {"alpha": (8, 12)})
    assert np.allclose(mean, np.arange(24, 36).mean())
    empty, _ = band_mean(values, freqs, {"high": (100, 120)})
    assert np.isnan(empty).all()
    moved, _ = band_sum(values.T, freqs, axis=0)
    assert np.allclose(moved.T, summed)
    odd = rfft_freqs(385, 128.0)  # no hard-coded bins-per-Hz factor
    odd_sum, _ = band_sum(np.ones(len(odd)), odd, {"alpha": (8, 12)})
    assert odd_sum[0] == np.sum((odd >= 8) & (odd < 12))

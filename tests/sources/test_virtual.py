"""The ICA virtual layer: exact conservation per window, residual term, x frequency."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.relevance.spectral import dft_relevance
from eegcrp.sources import ica_relevance
from eegcrp.training import normalize_windows


def _decomposition(rng, n_channels=8, n_components=5):
    """A random linear decomposition of CAR data: unmixing, its pseudo-inverse, a mean."""
    car = np.eye(n_channels) - 1.0 / n_channels
    mixing = car @ rng.standard_normal((n_channels, n_components)) * 1e-5
    unmixing = np.linalg.pinv(mixing)
    return unmixing, mixing, rng.standard_normal(n_channels) * 1e-7


def _windows(rng, n=6, n_channels=8, n_times=128):
    x = rng.standard_normal((n, n_channels, n_times)) * 1e-5
    return x - x.mean(axis=1, keepdims=True)  # CAR


@pytest.mark.parametrize("standardized", [True, False])
@pytest.mark.parametrize("n_components", [5, 7])
def test_components_plus_residual_conserve_every_window(standardized, n_components):
    rng = np.random.default_rng(0)
    u, a, m = _decomposition(rng, n_components=n_components)
    x = _windows(rng)
    z = normalize_windows(x).astype(np.float64) if standardized else x
    relevance = z * rng.standard_normal(x.shape)  # gradient x input-like heatmaps
    out = ica_relevance(x, relevance, u, a, m, standardized=standardized)
    total = relevance.sum(axis=(1, 2))
    assert np.all(out.error < 1e-10)
    np.testing.assert_allclose(out.component.sum(1) + out.residual, total, rtol=1e-9)
    # the residual term holds the mean and the components not kept, and it is not zero
    assert np.all(np.abs(out.residual) > 1e-6 * np.abs(relevance).sum(axis=(1, 2)))
    # per bin: sums to each term's relevance
    np.testing.assert_allclose(out.component_spectrum.sum(-1), out.component, atol=1e-9)
    np.testing.assert_allclose(out.residual_spectrum.sum(-1), out.residual, atol=1e-9)


def test_full_rank_decomposition_leaves_nothing_to_the_residual():
    rng = np.random.default_rng(1)
    mixing = rng.standard_normal((6, 6)) * 1e-5
    x = rng.standard_normal((4, 6, 64)) * 1e-5
    z = normalize_windows(x).astype(np.float64)
    out = ica_relevance(x, z * rng.random(x.shape), np.linalg.inv(mixing), mixing,
                        np.zeros(6))
    np.testing.assert_allclose(out.residual, 0.0, atol=1e-12)
    assert np.all(out.error < 1e-10)


def test_matches_the_explicit_component_terms_and_the_dft_layer():
    rng = np.random.default_rng(2)
    u, a, m = _decomposition(rng)
    x = _windows(rng, n=3)
    mu = x.mean(axis=(1, 2), keepdims=True)
    sd = x.std(axis=(1, 2), keepdims=True)
    z = (x - mu) / sd
    relevance = z * rng.standard_normal(x.shape)
    out = ica_relevance(x, relevance, u, a, m)
    src = np.einsum("kc,nct->nkt", u, x - m[None, :, None])
    q = relevance / z
    for k in range(a.shape[1]):
        term = a[:, k][None, :, None] * src[:, k][:, None, :]
        term = (term - term.mean(axis=(1, 2), keepdims=True)) / sd
        np.testing.assert_allclose(out.component[:, k], (term * q).sum(axis=(1, 2)),
                                   rtol=1e-9, atol=1e-12)
        # ICA layer then DFT layer = the combined component x frequency layer
        chained = dft_relevance(term, term * q).sum(axis=1)
        np.testing.assert_allclose(out.component_spectrum[:, k], chained, atol=1e-10)


def test_shape_mismatch_is_an_error():
    rng = np.random.default_rng(3)
    u, a, m = _decomposition(rng)
    x = _windows(rng)
    with pytest.raises(ValueError, match="must be equal"):
        ica_relevance(x, x[:, :, :-1], u, a, m)

"""Per-subject alignment (eegcrp.training.alignment): whitening, scaling, transductive maps."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.errors import TrainingError
from eegcrp.training.alignment import apply_maps, subject_maps


def _windows(n_subjects=3, n=20, c=5, t=100, seed=0, car=False):
    rng = np.random.default_rng(seed)
    xs, groups = [], []
    for s in range(n_subjects):
        mix = rng.standard_normal((c, c)) * (s + 1)  # subjects differ in covariance and scale
        x = np.einsum("cd,ndt->nct", mix, rng.standard_normal((n, c, t))) * 1e-5
        if car:
            x = x - x.mean(axis=1, keepdims=True)
        xs.append(x)
        groups += [f"s{s}"] * n
    return np.concatenate(xs), np.array(groups)


def _mean_cov(x):
    return np.einsum("nct,ndt->cd", x, x) / (x.shape[0] * x.shape[2])


def test_euclidean_alignment_whitens_each_subject():
    x, groups = _windows()
    maps = subject_maps(x, groups, "euclidean")
    aligned = apply_maps(x, groups, maps)
    for s in maps:
        cov = _mean_cov(aligned[groups == s].astype(np.float64))
        assert np.allclose(cov, np.eye(5), atol=1e-5)
        assert np.allclose(maps[s], maps[s].T)  # symmetric inverse square root


def test_euclidean_alignment_of_car_data_whitens_the_data_subspace():
    x, groups = _windows(car=True)
    aligned = apply_maps(x, groups, subject_maps(x, groups, "euclidean"))
    projector = np.eye(5) - np.ones((5, 5)) / 5  # rank 4: the channel sum is zero
    for s in np.unique(groups):
        cov = _mean_cov(aligned[groups == s].astype(np.float64))
        assert np.allclose(cov, projector, atol=1e-5)
        assert np.abs(aligned[groups == s].sum(axis=1)).max() < 1e-5  # stays referenced


def test_standardize_gives_unit_channel_std_and_maps_use_only_the_own_subject():
    x, groups = _windows()
    maps = subject_maps(x, groups, "standardize")
    aligned = apply_maps(x, groups, maps)
    for s in maps:
        std = aligned[groups == s].transpose(1, 0, 2).reshape(5, -1).std(axis=1)
        assert np.allclose(std, 1, atol=1e-5)
    # a subject's map depends on its own windows only (the test subject's, unlabelled)
    alone = subject_maps(x[groups == "s1"], groups[groups == "s1"], "euclidean")
    together = subject_maps(x, groups, "euclidean")
    assert np.allclose(alone["s1"], together["s1"])


def test_none_and_bad_input():
    x, groups = _windows(n_subjects=2)
    assert subject_maps(x, groups, "none") == {}
    assert apply_maps(x, groups, {}) is x
    with pytest.raises(TrainingError, match="unknown alignment"):
        subject_maps(x, groups, "riemann")
    flat = x.copy()
    flat[groups == "s0", 2] = 0.0
    with pytest.raises(TrainingError, match=r"channel\(s\) \[2\] are flat"):
        subject_maps(flat, groups, "standardize")
    with pytest.raises(TrainingError, match="no alignment map"):
        apply_maps(x, groups, {"s0": np.eye(5)})

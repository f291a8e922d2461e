"""Group tests: false-positive rate near alpha on null data, FDR, effect sizes, power."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.regions import fdr_bh, group_test, sign_flip_test, wilcoxon_test


@pytest.mark.parametrize("n_subjects", [10, 20])  # exact enumeration, random sign flips
def test_sign_flip_false_positive_rate_is_near_alpha(n_subjects):
    rng = np.random.default_rng(n_subjects)
    null = rng.standard_normal((n_subjects, 3000))  # 3000 null cells
    p = sign_flip_test(null, n_permutations=2000, seed=1)
    rate = float((p <= 0.05).mean())
    assert 0.035 <= rate <= 0.065, rate  # binomial SD at 3000 cells: 0.004
    # skewed but symmetric-about-0 null (Laplace): still calibrated
    p = sign_flip_test(rng.laplace(size=(n_subjects, 3000)), n_permutations=2000, seed=2)
    assert 0.035 <= float((p <= 0.05).mean()) <= 0.065


def test_wilcoxon_false_positive_rate_is_near_alpha():
    rng = np.random.default_rng(5)
    p = wilcoxon_test(rng.standard_normal((12, 600)))
    assert 0.025 <= float((p <= 0.05).mean()) <= 0.075  # binomial SD at 600 cells: 0.009


def test_fdr_controls_the_familywise_rate_under_the_complete_null():
    rng = np.random.default_rng(3)
    families = [fdr_bh(sign_flip_test(rng.standard_normal((10, 40)), seed=k), 0.05)[0].any()
                for k in range(150)]
    assert np.mean(families) <= 0.09  # <= alpha in expectation (150 families)


def test_fdr_bh_values_and_nan():
    reject, adj = fdr_bh(np.array([0.01, 0.04, 0.03, np.nan, 0.5]), 0.05)
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06, 0.0533, 0.5 -> monotone from the top
    np.testing.assert_allclose(adj[[0, 1, 2, 4]], [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert reject.tolist() == [True, False, False, False, False] and np.isnan(adj[3])
    assert fdr_bh(np.array([0.01, 0.02, 0.03]), 0.05)[0].all()


def test_real_effects_are_found_with_their_effect_size():
    rng = np.random.default_rng(4)
    values = rng.standard_normal((12, 4)) + np.array([0.0, 0.0, 1.5, -1.5])
    out = group_test(values, seed=0)
    assert out["p"][2] < 0.01 and out["p"][3] < 0.01
    assert out["dz"][2] > 0.8 and out["dz"][3] < -0.8
    assert (out["n_subjects"] == 12).all()
    values[0, 0] = np.nan  # a missing subject counts out of that cell only
    assert group_test(values, seed=0)["n_subjects"][0] == 11

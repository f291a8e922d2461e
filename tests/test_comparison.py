"""eegcrp.comparison against MOABB's meta-analysis (the reference it restates)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegcrp.comparison import EXACT_MAX, N_PERMUTATIONS, combine, paired_test


def _moabb_frame(scores: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    rows = [{"dataset": d, "pipeline": p, "subject": k, "session": "0", "score": v}
            for d, pipes in scores.items() for p, values in pipes.items()
            for k, v in enumerate(values)]
    return pd.DataFrame(rows)


def _studies(rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    # names in alphabetical order: MOABB pairs its sqrt(n) weights (in order of appearance)
    # with p-values in pivot-table order (sorted), which agree only then
    for name, n, shift in (("a_small", 9, 0.04), ("b_exact", EXACT_MAX, -0.01),
                           ("c_large", 24, 0.03)):
        b = rng.uniform(0.5, 0.8, n)
        out[name] = {"a": b + shift + rng.normal(0, 0.03, n), "b": b}
    return out


def test_per_dataset_p_and_smd_equal_moabbs():
    meta = pytest.importorskip("moabb.analysis.meta_analysis")
    studies = _studies(np.random.default_rng(0))
    ref = meta.compute_dataset_statistics(_moabb_frame(studies))
    for name, pipes in studies.items():
        ours = paired_test(pipes["a"], pipes["b"])
        row = ref[(ref.dataset == name) & (ref.pipe1 == "a") & (ref.pipe2 == "b")].iloc[0]
        assert ours.p == pytest.approx(row["p"], rel=1e-12)
        assert ours.smd == pytest.approx(row["smd"], rel=1e-12)
        assert ours.n == row["nsub"]
    assert paired_test(studies["c_large"]["a"], studies["c_large"]["b"]).test.startswith("Wilcoxon")


def test_combined_across_datasets_equals_moabbs():
    meta = pytest.importorskip("moabb.analysis.meta_analysis")
    studies = _studies(np.random.default_rng(1))
    p_ref, smd_ref = meta.find_significant_differences(
        meta.compute_dataset_statistics(_moabb_frame(studies)))
    ours = combine([paired_test(s["a"], s["b"]) for s in studies.values()])
    assert ours.p == pytest.approx(p_ref.loc["a", "b"], rel=1e-10)
    assert ours.smd == pytest.approx(smd_ref.loc["a", "b"], rel=1e-10)
    assert (ours.n_datasets, ours.n_subjects) == (3, 9 + EXACT_MAX + 24)


def test_exact_sign_flip_by_definition():
    # every difference positive: only the identity flip reaches the observed sum
    d = np.array([0.1, 0.2, 0.05, 0.3])
    assert paired_test(d, np.zeros(4)).p == pytest.approx(1 / 16)
    # every difference negative: all 16 flips reach it; MOABB caps p below 1 for Stouffer
    assert paired_test(np.zeros(4), d).p == pytest.approx(15 / 16)


def test_random_sign_flips_are_seeded():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.5, 0.9, 16), rng.uniform(0.5, 0.9, 16)
    first, again = paired_test(a, b, seed=3), paired_test(a, b, seed=3)
    assert first == again and first.test == "sign-flip (10 000)"
    assert 1 / N_PERMUTATIONS <= first.p < 1


def test_interval_is_the_paired_t_interval():
    from scipy import stats

    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.5, 0.9, 10), rng.uniform(0.5, 0.9, 10)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert paired_test(a, b).ci == pytest.approx((ci.low, ci.high), rel=1e-12)


def test_fewer_than_two_subjects_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        paired_test([0.7], [0.6])


def test_the_observed_sum_counts_whatever_the_summation_order():
    # EEGMMIDB's balanced accuracies: against chance, summed by a matrix product, the
    # identity flip fell 1 ulp short of the pairwise sum and the exact p came out 0
    scores = np.array([0.8883399209486166, 0.8438735177865613, 0.9328063241106719,
                       0.6877470355731226, 0.6696428571428572, 0.9166666666666667,
                       0.9565217391304348, 0.7569169960474309, 0.7827380952380952,
                       0.7351190476190477])
    assert paired_test(scores, np.full(10, 0.5)).p == pytest.approx(1 / 1024)

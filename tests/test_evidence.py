"""Evidence gates against their definitions: t-tests over subjects, verdict rules,
ICLabel's conditions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eegcrp.evidence import (
    decoding_evidence,
    faithfulness_evidence,
    iclabel_conditions,
    pooled_conditions,
    t_interval,
)


def test_t_interval_is_the_student_interval():
    x = np.array([0.61, 0.72, 0.55, 0.68, 0.70])
    lo, hi = t_interval(x, 0.95)
    ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    np.testing.assert_allclose([lo, hi], ref, rtol=1e-12)
    assert np.isnan(t_interval([0.5])).all()


def _series(values):
    return pd.Series(values, index=[f"S{i:02d}" for i in range(len(values))])


def test_decoding_above_chance_only_when_the_test_across_subjects_passes():
    thresholds = _series([0.6] * 6)
    good = decoding_evidence(_series([0.71, 0.66, 0.74, 0.62, 0.69, 0.7]), 0.5, thresholds)
    ref = stats.ttest_1samp(np.array([0.71, 0.66, 0.74, 0.62, 0.69, 0.7]) - 0.5, 0,
                            alternative="greater")
    assert good.learned is True and good.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert good.above == 6 and good.verdict == "above chance"
    # at chance: 0.516 mean, most subjects below their threshold
    chance = decoding_evidence(_series([0.53, 0.47, 0.55, 0.49, 0.54]), 0.5, thresholds)
    assert chance.learned is False and chance.p > 0.05 and chance.above == 0
    assert chance.ci_low < 0.5 < chance.ci_high
    few = decoding_evidence(_series([0.9, 0.95]), 0.5, thresholds)
    assert few.learned is None and few.verdict == "not testable"


def _aopc(diffs_by_domain):
    rows = []
    for domain, diffs in diffs_by_domain.items():
        for k, d in enumerate(diffs):
            for rep in range(2):  # repetitions of a subject are averaged first
                rows.append({"fold": f"rep{rep:02d}_sub-S{k}", "subject": f"S{k}",
                             "method": "lrp:A", "domain": domain, "aopc_morf": 0.2 + d,
                             "aopc_random": 0.2})
    return pd.DataFrame(rows)


def test_faithfulness_verdicts_need_a_significant_and_large_enough_effect():
    aopc = _aopc({"channels": [0.30, 0.25, 0.35, 0.28, 0.31],  # large, consistent
                  "bands": [0.02, -0.01, 0.03, 0.0, 0.01],  # the simulator's "0.01 vs -0.00"
                  "time": [0.01, 0.2, 0.02, 0.3, 0.01]})
    out = faithfulness_evidence(aopc, "lrp:A").set_index("domain")
    assert out.loc["channels", "verdict"] == "faithful"
    assert out.loc["bands", "verdict"] == "indistinguishable from random"
    assert out.loc["channels", "n_subjects"] == 5
    diff = np.array([0.30, 0.25, 0.35, 0.28, 0.31])
    assert out.loc["channels", "difference"] == pytest.approx(diff.mean())
    assert out.loc["channels", "d_z"] == pytest.approx(diff.mean() / diff.std(ddof=1))
    # significant but small: weakly faithful
    small = faithfulness_evidence(aopc, "lrp:A", min_dz=100.0).set_index("domain")
    assert small.loc["channels", "verdict"] == "weakly faithful"
    two = faithfulness_evidence(_aopc({"channels": [0.3, 0.3]}), "lrp:A")
    assert two["verdict"].tolist() == ["not testable"]
    assert faithfulness_evidence(aopc, "lrp:other").empty


def test_iclabel_conditions_on_a_sparse_unreferenced_narrow_band_montage():
    sparse = {c.name: c for c in iclabel_conditions(
        n_channels=4, band=(1.0, 30.0), car=False, n_samples=50_000, n_components=3,
        extended_infomax=True)}
    assert not sparse["channels"].holds and sparse["channels"].required
    assert not sparse["reference"].holds and not sparse["band"].holds
    assert not sparse["band"].required and sparse["samples"].holds
    full = iclabel_conditions(n_channels=64, band=(1.0, 100.0), car=True, n_samples=200_000,
                              n_components=63, extended_infomax=True)
    assert all(c.holds for c in full)
    few = {c.name: c for c in iclabel_conditions(
        n_channels=64, band=(1.0, 100.0), car=True, n_samples=1000, n_components=63,
        extended_infomax=True)}
    assert not few["samples"].holds and "79380" in few["samples"].needed
    pooled = {p["name"]: p for p in pooled_conditions({
        "S1": iclabel_conditions(n_channels=19, band=(1.0, 40.0), car=True, n_samples=10**6,
                                 n_components=18, extended_infomax=True),
        "S2": iclabel_conditions(n_channels=19, band=(1.0, 40.0), car=True, n_samples=100,
                                 n_components=18, extended_infomax=True)})}
    assert pooled["channels"]["holds"] and not pooled["samples"]["holds"]
    assert pooled["samples"]["failing"] == ["S2"] and pooled["band"]["values"] == ["1-40 Hz"]

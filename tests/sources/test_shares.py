"""Category relevance and shares: hard vs probability labels, groupings, bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eegcrp.sources import CATEGORIES, bootstrap_mean, category_relevance, group_shares
from eegcrp.sources.shares import unit_table

BRAIN, EYE, RES = CATEGORIES.index("brain"), CATEGORIES.index("eye"), CATEGORIES.index(
    "residual")


def test_category_relevance_hard_and_probability():
    comp = np.array([[2.0, -1.0, 0.5]])
    proba = np.zeros((3, 7))
    proba[0, 0], proba[0, 2] = 0.7, 0.3  # brain 0.7, eye 0.3
    proba[1, 2] = 1.0  # eye
    proba[2, 6] = 1.0  # other
    out = category_relevance(comp, np.array([0.25]), proba)
    assert out["hard", "signed"][0, BRAIN] == 2.0 and out["hard", "signed"][0, EYE] == -1.0
    assert out["hard", "positive"][0, EYE] == 0.0 and out["hard", "absolute"][0, EYE] == 1.0
    np.testing.assert_allclose(out["probability", "signed"][0, [BRAIN, EYE]], [1.4, -0.4])
    np.testing.assert_allclose(out["probability", "absolute"][0, EYE], 0.6 + 1.0)
    for values in out.values():  # the residual is its own category
        assert values[0, RES] in (0.25,)
        assert values.shape == (1, len(CATEGORIES))


def _units(rng, n_subjects=6):
    keys, classes, subjects, cats = [], [], [], []
    for s in range(n_subjects):
        for f in range(4):
            for cls in ("a", "b"):
                keys.append(f"rep00/S{s:02d}/b2_conv2/{f}")
                classes.append(cls)
                subjects.append(f"S{s:02d}")
                row = np.zeros(len(CATEGORIES))
                row[BRAIN] = 3.0 if f < 2 else 1.0
                row[EYE] = 1.0 + rng.random()
                cats.append(row)
    cats = np.array(cats)
    categories = {(w, m): cats for w in ("hard", "probability")
                  for m in ("signed", "positive", "absolute")}
    return unit_table(np.array(keys), np.array(classes), np.array(subjects), categories)


def test_group_shares_per_class_and_for_a_custom_grouping():
    units = _units(np.random.default_rng(0))
    per_class = group_shares(units, None, n_boot=200, seed=1)
    part = per_class[(per_class["weighting"] == "hard") & (per_class["measure"] == "positive")]
    for _, rows in part.groupby("group"):
        assert abs(rows["share"].sum() - 1.0) < 1e-9  # each subject's shares sum to 1
        assert (rows["ci_low"] <= rows["share"] + 1e-12).all()
        assert (rows["share"] <= rows["ci_high"] + 1e-12).all()
    # pipeline B's clusters: a mapping from (FilterKey.id, class) or FilterKey.id to a label
    groups = {k: ("first" if k.endswith(("/0", "/1")) else "second")
              for k in units["key"].unique()}
    clusters = group_shares(units, groups, n_boot=200, seed=1)
    brain = clusters[(clusters["category"] == "brain") & (clusters["weighting"] == "hard")
                     & (clusters["measure"] == "positive")].set_index("group")["share"]
    assert brain["first"] > brain["second"]
    only_a = group_shares(units, {(k, "a"): "x" for k in units["key"].unique()}, n_boot=200)
    assert set(only_a["group"]) == {"x"}
    again = group_shares(units, groups, n_boot=200, seed=1)
    pd.testing.assert_frame_equal(clusters, again)  # seeded: the same intervals


def test_bootstrap_mean():
    values = np.array([[0.1], [0.2], [0.3], [np.nan]])
    mean, low, high = bootstrap_mean(values, 500, 0.9, seed=0)
    assert abs(mean[0] - 0.2) < 1e-12 and 0.1 <= low[0] < mean[0] < high[0] <= 0.3
    one = bootstrap_mean(np.array([[0.5]]))
    assert one[1][0] == one[2][0] == 0.5

"""Embedding, clustering, matching and stability on constructed descriptor sets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from eegcrp.concepts import ConceptClusterer, compute_concepts, match_clusters
from eegcrp.concepts.clustering import (
    resolve_min_cluster_size,
    resolve_n_epochs,
    resolve_n_neighbors,
)
from eegcrp.config import ConceptsConfig
from eegcrp.errors import ConceptsError, EEGCRPError
from tests.concepts.conftest import synthetic_store


def _planted(ds, cls: str, frame):
    """Planted group of each row of ``frame`` (the filters of class ``cls``)."""
    group = ds["group"].sel({"class": cls}).values
    return group[frame["filter"].to_numpy()]


def test_recovers_planted_groups_and_stability_is_assessed():
    ds = synthetic_store(n_reps=2, n_subjects=6)
    result = compute_concepts(ds, ConceptsConfig(seed=1))
    f = result.filters
    for cls in ("a", "b"):
        rows = f[f["class"] == cls]
        ari = adjusted_rand_score(_planted(ds, cls, rows), rows["cluster_pooled"])
        assert ari >= 0.9, ari
        for r in (0, 1):
            sub = rows[rows["repetition"] == r]
            assert adjusted_rand_score(_planted(ds, cls, sub), sub["cluster_rep"]) >= 0.9
    pooled = result.clusters[(result.clusters["scope"] == "pooled")
                             & (result.clusters["label"] >= 0)]
    assert len(pooled) == 8  # 4 groups x 2 classes, each in every model: shared and stable
    assert pooled["shared"].all() and pooled["stable"].all()
    assert (pooled["n_models"] == 12).all() and (pooled["recurrence"] == 1).all()
    # "all" holds every filter, NC the noise
    every = result.clusters[result.clusters["cluster"] == "all"]
    assert set(every["n_filters"]) == {96, 192}
    stab = result.stability[result.stability["scope"] != "pooled"]
    assert (stab["ari_vs_pooled"] >= 0.9).all()
    assert set(result.agreement["kind"]) == {"same", "different"}


def test_identical_repetitions_are_perfectly_stable():
    ds = synthetic_store(n_reps=2, n_subjects=5, identical_reps=True)
    result = compute_concepts(ds, ConceptsConfig(seed=3))
    stab = result.stability[result.stability["scope"] != "pooled"]
    assert np.allclose(stab["ari_vs_pooled"], 1.0)
    pooled = result.clusters[(result.clusters["scope"] == "pooled")
                             & (result.clusters["label"] >= 0)]
    assert (pooled["recurrence"] == 1.0).all() and pooled["stable"].all()
    # the two repetitions' clusterings are the same partition of the same filters
    f = result.filters[result.filters["class"] == "a"]
    r0 = f[f["repetition"] == 0]["cluster_rep"].to_numpy()
    r1 = f[f["repetition"] == 1]["cluster_rep"].to_numpy()
    assert adjusted_rand_score(r0, r1) == 1.0
    # the same held-out subject's models agree perfectly
    same = result.agreement[result.agreement["kind"] == "same"]
    assert np.allclose(same["r"], 1.0)


def test_one_repetition_is_not_assessable_never_stable():
    ds = synthetic_store(n_reps=1, n_subjects=6)
    result = compute_concepts(ds, ConceptsConfig(seed=0))
    pooled = result.clusters[result.clusters["scope"] == "pooled"]
    assert pooled["stable"].isna().all()
    assert (pooled.loc[pooled["label"] >= 0, "stability"]
            == "not assessable (1 repetition)").all()
    assert result.summary["stability_assessable"] is False
    assert result.stability["ari_vs_pooled"].isna().all()
    assert result.agreement.query("kind == 'same'").empty


def test_permuting_rows_permutes_labels_and_embedding_exactly():
    ds = synthetic_store(n_reps=1, n_subjects=6)
    from eegcrp.concepts import filter_descriptors

    x = filter_descriptors(ds).values[0]
    perm = np.random.default_rng(5).permutation(len(x))
    a = ConceptClusterer(random_state=0, min_cluster_size=5).fit(x)
    b = ConceptClusterer(random_state=0, min_cluster_size=5).fit(x[perm])
    assert np.array_equal(a.labels_[perm], b.labels_)
    assert np.allclose(a.embedding_[perm], b.embedding_)
    again = ConceptClusterer(random_state=0, min_cluster_size=5).fit(x)  # deterministic
    assert np.array_equal(a.embedding_, again.embedding_)
    assert a.get_params()["min_cluster_size"] == 5 and a.n_clusters_ == 4


@pytest.mark.parametrize("params", [
    {"embedding": "none"},
    {"clustering": "dbscan", "eps": 0.5, "min_samples": 5},
    {"n_neighbors": "all"},
])
def test_options_recover_planted_groups(params):
    ds = synthetic_store(n_reps=1, n_subjects=6)
    from eegcrp.concepts import filter_descriptors

    d = filter_descriptors(ds, ["activation_mean", "relevance_mean"])
    model = ConceptClusterer(random_state=0, min_cluster_size=5, **params).fit(d.values[0])
    truth = ds["group"].sel({"class": "a"}).values[d.units["filter"].to_numpy()]
    assert adjusted_rand_score(truth, model.labels_) >= 0.9
    assert (model.embedding_ is None) == (params.get("embedding") == "none")


def test_matching_is_hungarian_on_centroids_within_the_radius():
    rng = np.random.default_rng(0)
    centres = np.eye(3)
    ref = np.concatenate([c + 0.05 * rng.standard_normal((20, 3)) for c in centres])
    ref_labels = np.repeat([0, 1, 2], 20)
    own = np.concatenate([centres[2] + 0.05 * rng.standard_normal((10, 3)),
                          centres[0] + 0.05 * rng.standard_normal((10, 3)),
                          -np.ones((10, 3)) + 0.05 * rng.standard_normal((10, 3))])
    own_labels = np.repeat([0, 1, 2], 10)
    m = match_clusters(ref, ref_labels, own, own_labels, metric="euclidean")
    assert m["matched"].tolist() == [2, 0, -1]  # the third lies far outside every radius
    assert (m.loc[:1, "distance"] <= m.loc[:1, "radius"]).all()


def test_resolved_settings():
    assert resolve_n_neighbors("auto", 100) == 15
    assert resolve_n_neighbors("auto", 10_000) == 100
    assert resolve_n_neighbors("all", 160) == 159
    assert resolve_n_neighbors(500, 40) == 39
    assert resolve_min_cluster_size("auto", 4, 0.5) == 5
    assert resolve_min_cluster_size("auto", 50, 0.5) == 25
    assert resolve_min_cluster_size(7, 50, 0.5) == 7
    assert resolve_n_epochs("auto", 800) is None and resolve_n_epochs("auto", 8000) == 200


def test_bad_input_is_a_clear_error():
    one = synthetic_store(n_reps=1, n_subjects=1)
    with pytest.raises(ConceptsError, match="at least two models") as err:
        compute_concepts(one, ConceptsConfig())
    assert isinstance(err.value, EEGCRPError) and "dataset.subjects" in str(err.value)
    few = synthetic_store(n_reps=1, n_subjects=3, n_filters=4)
    with pytest.raises(ConceptsError, match=r"fewer than concepts\.min_cluster_size = 20"):
        compute_concepts(few, ConceptsConfig(min_cluster_size=20))
    with pytest.raises(ConceptsError, match=r"--set concepts\.min_samples="):
        compute_concepts(few, ConceptsConfig(clustering="dbscan", min_samples=15))


def test_exact_knn_matches_brute_force():
    from scipy.spatial.distance import cdist

    from eegcrp.concepts.clustering import exact_knn

    x = np.random.default_rng(1).standard_normal((300, 7))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for metric in ("cosine", "euclidean"):
        idx, dist = exact_knn(x, 12, metric, chunk=64)
        full = cdist(x, x, metric)
        assert (idx[:, 0] == np.arange(300)).all() and np.allclose(dist[:, 0], 0, atol=1e-6)
        assert np.allclose(dist, np.sort(full, axis=1)[:, :12], atol=1e-5)
        assert np.allclose(np.take_along_axis(full, idx, 1), dist, atol=1e-5)


def test_a_concept_of_one_repetition_is_not_stable_the_recurring_ones_are():
    ds = synthetic_store(n_reps=4, n_subjects=6, transient_rep=0)
    result = compute_concepts(ds, ConceptsConfig(seed=2))
    f = result.filters[result.filters["class"] == "a"]
    group = ds["group"].sel({"class": "a"}).values[f["filter"].to_numpy()]
    transient = (f["repetition"] == 0).to_numpy() & (group == 3)
    pooled = result.clusters[(result.clusters["class"] == "a")
                             & (result.clusters["scope"] == "pooled")].set_index("cluster")

    def cluster_of(rows: np.ndarray) -> str:
        names = f.loc[rows, "cluster_pooled"]
        name = names.mode().iloc[0]
        assert (names == name).mean() >= 0.9  # the planted filters form one cluster
        return name

    lone = cluster_of(transient)
    assert pooled.loc[lone, "recurrence"] == pytest.approx(1 / 4)
    assert not pooled.loc[lone, "stable"]
    for g in range(4):  # group 3 is in 3 of the 4 repetitions: 75 % >= 70 %
        recurring = cluster_of(~transient & (group == g))
        assert recurring != lone
        assert pooled.loc[recurring, "recurrence"] == pytest.approx(1 if g < 3 else 3 / 4)
        assert pooled.loc[recurring, "stable"]


def test_stability_by_repetitions_reclusters_nested_subsets():
    from eegcrp.concepts import stability_by_repetitions

    ds = synthetic_store(n_reps=4, n_subjects=6, transient_rep=0)
    table = stability_by_repetitions(ds, ConceptsConfig(seed=2), counts=(2, 4))
    assert list(table["repetitions"].unique()) == [2, 4]
    a = table[table["class"] == "a"].set_index("repetitions")
    # with 2 repetitions the lone concept of repetition 0 recurs in half of them (< 70 %),
    # and so does the group it replaced; with 4, only the lone concept is unstable
    assert (a.loc[4, "clusters"], a.loc[4, "stable"]) == (5, 4)
    assert a.loc[2, "stable"] == 3
    assert 0 < a.loc[4, "stable_filter_share"] < 1
    with pytest.raises(ConceptsError, match="has 4 repetitions"):
        stability_by_repetitions(ds, ConceptsConfig(seed=2), counts=(5,))

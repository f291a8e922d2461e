"""Filter descriptors: shapes, normalisation, invariances (also end to end through explain)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eegcrp.concepts import ConceptClusterer, compute_concepts, filter_descriptors
from eegcrp.concepts.descriptors import descriptor_variables
from eegcrp.config import ConceptsConfig
from eegcrp.store import FoldRelevance, RelevanceRun, open_relevance
from tests.concepts.conftest import synthetic_store

KINDS = ("activation_mean", "relevance_mean", "spectral", "spectral_bins", "spatial", "power")


def test_shapes_blocks_and_unit_norm():
    ds = synthetic_store(n_reps=1, n_subjects=3, n_filters=4)  # 8 channels, 5 bands
    sizes = {"activation_mean": 32, "relevance_mean": 32, "spectral": 40,
             "spectral_bins": 8 * 59, "spatial": 8, "power": 40}  # bins 1..59 Hz (1 Hz apart)
    for kind, size in sizes.items():
        d = filter_descriptors(ds, [kind])
        assert d.values.shape == (2, 12, size)
        assert np.allclose(np.linalg.norm(d.values, axis=-1), 1.0)
    d = filter_descriptors(ds, KINDS)
    assert d.values.shape == (2, 12, sum(sizes.values()))
    assert np.allclose(np.linalg.norm(d.values, axis=-1), 1.0)
    for block in d.blocks.values():  # every block weighs the same
        assert np.allclose(np.linalg.norm(d.values[..., block], axis=-1), 1 / math.sqrt(6))
    assert d.units["key"].iloc[5] == "rep00/S02/b2_conv2/1"
    assert list(d.units.columns) == ["key", "fold", "repetition", "subject", "layer", "filter"]


def _modify(ds, fold: int, filt: int, **factors):
    out = ds.copy(deep=True)
    for name, (scale, offset) in factors.items():
        out[name].values[fold, :, filt] = out[name].values[fold, :, filt] * scale + offset
    return out


@pytest.mark.parametrize(("kind", "changes", "same"), [
    # pre-batch-norm activation: offset, scale and sign are not identifiable
    ("activation_mean", {"activation_mean": (2.5, 4.0)}, True),
    ("activation_mean", {"activation_mean": (-0.4, -1.0)}, True),
    # relevance: scale (model confidence) does not matter, sign (for/against) does
    ("relevance_mean", {"relevance_mean": (3.0, 0.0)}, True),
    ("relevance_mean", {"relevance_mean": (-1.0, 0.0)}, False),
    ("spectral", {"spectral_relevance_sum": (0.2, 0.0)}, True),
    ("spatial", {"spectral_relevance_sum": (7.0, 0.0)}, True),
    ("spatial", {"spectral_relevance_sum": (-1.0, 0.0)}, False),
    # input power: a common gain does not matter
    ("power", {"power_mean": (40.0, 0.0)}, True),
])
def test_invariances(kind, changes, same):
    ds = synthetic_store(n_reps=1, n_subjects=3, n_filters=4)
    a = filter_descriptors(ds, [kind]).values
    b = filter_descriptors(_modify(ds, 1, 2, **changes), [kind]).values
    unit = 1 * 4 + 2  # fold 1, filter 2
    others = np.delete(np.arange(12), unit)
    assert np.allclose(a[:, others], b[:, others])
    assert np.allclose(a[:, unit], b[:, unit]) == same
    if not same:
        assert np.allclose(a[:, unit], -b[:, unit])


def test_permuting_filters_of_a_model_permutes_descriptors():
    ds = synthetic_store(n_reps=1, n_subjects=3, n_filters=4)
    perm = np.array([2, 0, 3, 1])
    permuted = ds.copy(deep=True)
    for name in descriptor_variables(KINDS):
        permuted[name].values[1] = ds[name].values[1][:, perm]
    a = filter_descriptors(ds, KINDS).values
    b = filter_descriptors(permuted, KINDS).values
    assert np.allclose(b[:, 4:8], a[:, 4 + perm])
    assert np.allclose(b[:, :4], a[:, :4]) and np.allclose(b[:, 8:], a[:, 8:])


def test_filters_without_selected_windows_are_excluded_and_recorded(tmp_path):
    ds = synthetic_store(n_reps=1, n_subjects=6)
    ds["n_selected"].values[2, 0, 5] = 0
    for name in ("activation_mean", "relevance_mean", "power_mean"):
        ds[name].values[2, 0, 5] = np.nan  # means over no windows
    ds["spectral_relevance_sum"].values[2, 0, 5] = 0.0  # a sum over no windows
    d = filter_descriptors(ds, ["activation_mean", "power"])
    unit = 2 * 16 + 5
    assert not d.valid[0, unit] and d.excluded[0, unit] == "no selected windows"
    assert d.valid.sum() == d.valid.size - 1 and np.isnan(d.values[0, unit]).all()
    result = compute_concepts(ds, ConceptsConfig(seed=0))
    row = result.filters[(result.filters["class"] == "a")].iloc[unit]
    assert row["cluster_pooled"] == "excluded" and row["cluster_rep"] == "excluded"
    assert row["excluded"] == "no selected windows" and np.isnan(row["x_pooled"])
    assert result.summary["classes"]["a"]["excluded"] == 1
    every = result.clusters.query("cluster == 'all' and scope == 'pooled' and `class` == 'a'")
    assert int(every["n_filters"].iloc[0]) == 95
    # the products read back with their types (load_concepts)
    from eegcrp.concepts import load_concepts, write_concepts
    from eegcrp.stages import Manifest

    manifest = Manifest(stage="concepts", identity="test", config={}, complete=True)
    for product in write_concepts(result, tmp_path):
        manifest.add_product(tmp_path, product)
    manifest.write(tmp_path)
    back = load_concepts(tmp_path)
    assert back.filters.iloc[unit]["cluster_pooled"] == "excluded"
    assert back.filters["valid"].dtype == "boolean" and back.filters["subject"].iloc[0] == "S01"
    assert back.clusters["stable"].dtype == "boolean"
    assert back.clusters["repetition"].dtype == "Int64"
    assert (back.clusters["cluster_id"] == result.clusters["cluster_id"]).all()
    assert np.allclose(back.arrays["relevance_band"].values,
                       result.arrays["relevance_band"].values, equal_nan=True)
    assert list(back.arrays["channel"].values) == list(result.arrays["channel"].values)
    assert len(back.pooled("a")) == result.summary["classes"]["a"]["clusters"]
    assert set(result.summary["agreement"]["a"]) == {"different"}  # one repetition


# --------------------------------------------------------------------------- end to end
def _scale_filter(model, k: int, c: float) -> None:
    """Scale b2_conv2 filter k by c and its batch norm's statistics by c and c^2: the same
    function for every c != 0. The batch norm's eps is shared by all channels, so gamma
    absorbs the (tiny) change of sqrt(var + eps) and the sign of c, making it exact."""
    conv, bn = model.b2_conv2, model.b2_bn
    with torch.no_grad():
        var = float(bn.running_var[k])
        conv.weight[k] *= c
        bn.running_mean[k] *= c
        bn.running_var[k] *= c * c
        bn.weight[k] *= (math.copysign(1.0, c) * math.sqrt(c * c * var + bn.eps)
                         / (abs(c) * math.sqrt(var + bn.eps)))


def _permute_filters(model, perm: np.ndarray) -> None:
    """New filter j = old filter perm[j] (b2_conv2, b2_bn and the classifier's inputs)."""
    conv, bn, lin = model.b2_conv2, model.b2_bn, model.classifier
    idx = torch.as_tensor(perm)
    with torch.no_grad():
        conv.weight.copy_(conv.weight[idx])
        for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
            t.copy_(t[idx])
        w = lin.weight.view(lin.weight.shape[0], len(perm), -1)
        lin.weight.copy_(w[:, idx].reshape(lin.weight.shape))


def _reexplain(config, out_dir, modify):
    """Explain fold 0 again, through the explain stage's own worker, after ``modify``."""
    from eegcrp.io import load_checkpoint, save_checkpoint
    from eegcrp.stages import require
    from eegcrp.stages.explain import _explain_one, _window_columns
    from eegcrp.stages.prepare import load_prepared
    from eegcrp.stages.train import fold_records
    from eegcrp.training import normalize_windows

    dataset = load_prepared(require("prepare", config))
    fold = fold_records(require("train", config))[0]
    model, meta = load_checkpoint(config.output_dir / "training" / "folds" / fold["checkpoint"],
                                  sha256=fold["checkpoint_sha256"])
    subjects = [fold["test_subject"]]
    x, y, groups = dataset.get_data(subjects)
    xn = torch.as_tensor(normalize_windows(x, ddof=0), dtype=torch.float32)
    with torch.no_grad():
        before = model(xn)
        modify(model)
        assert torch.allclose(model(xn), before, atol=1e-5)  # the same function
    out_dir.mkdir()
    sha = save_checkpoint(out_dir / "model.pt", model.state_dict(), meta)
    trial, onset = _window_columns(dataset, subjects)
    attrs = {"name": fold["name"], "repetition": int(fold["repetition"]),
             "subject": fold["test_subject"], "subjects": subjects,
             "ch_names": list(dataset.ch_names)}
    _explain_one({**fold, "checkpoint_sha256": sha}, out_dir / "model.pt", x,
                 y.astype(np.int64), groups.astype(str), trial, onset, config.explain,
                 out_dir / f"{fold['name']}.h5", attrs, 1)
    return FoldRelevance(out_dir / f"{fold['name']}.h5")


def _dataset(run, folds):
    return RelevanceRun(run.run_dir, run.manifest, folds, []).to_dataset(
        descriptor_variables(KINDS))


@pytest.mark.usefixtures("one_torch_thread")
def test_end_to_end_invariance_to_rescaled_and_permuted_filters(tiny_study, tmp_path):
    run = open_relevance(tiny_study.output_dir)
    orig = _dataset(run, run.folds[:1])
    d0 = filter_descriptors(orig, KINDS)
    k = 3
    for c in (2.5, -0.6):
        fold = _reexplain(tiny_study, tmp_path / f"scaled{c}",
                          lambda m, c=c: _scale_filter(m, k, c))
        ds = _dataset(run, [fold])
        raw = ds["activation_mean"].values[0, :, k]
        assert np.allclose(raw, c * orig["activation_mean"].values[0, :, k], rtol=1e-4,
                           atol=1e-6)  # the activation did change ...
        d = filter_descriptors(ds, KINDS)
        assert np.array_equal(d.valid, d0.valid)
        assert np.allclose(d.values, d0.values, atol=2e-5)  # ... its descriptors did not
    perm = np.random.default_rng(0).permutation(16)
    fold = _reexplain(tiny_study, tmp_path / "permuted", lambda m: _permute_filters(m, perm))
    d = filter_descriptors(_dataset(run, [fold]), KINDS)
    assert np.allclose(d.values, d0.values[:, perm], atol=2e-5)
    # the clustering of all folds' filters: fold 0's labels are permuted the same way
    full = filter_descriptors(_dataset(run, run.folds), ["activation_mean"])
    swapped = filter_descriptors(_dataset(run, [fold, *run.folds[1:]]), ["activation_mean"])
    a = ConceptClusterer(random_state=0).fit(full.values[0]).labels_
    b = ConceptClusterer(random_state=0).fit(swapped.values[0]).labels_
    assert np.array_equal(b[:16], a[:16][perm]) and np.array_equal(b[16:], a[16:])

"""One fold's CRP (eegcrp.relevance.fold): the three phases equal computing everything."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from eegcrp.config import ExplainConfig
from eegcrp.errors import ExplainError
from eegcrp.relevance.crp import ConceptExplainer, select_samples
from eegcrp.relevance.fold import FoldData, explain_fold
from eegcrp.training import normalize_windows
from tests.helpers import C, T, make_model, rel_close

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_data(n: int = 12, seed: int = 0, subject: str = "s2") -> FoldData:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, C, T)) * 1e-5).astype(np.float32)
    return FoldData(normalize_windows(x), np.tile([0, 1], n // 2), np.full(n, subject),
                    np.arange(n) // 3, (np.arange(n) % 3) * 1.0)


def test_three_phases_equal_computing_everything(tmp_path):
    data = make_data()
    model = make_model(seed=10)
    cfg = ExplainConfig(batch_size=7, device="cpu")  # chunks cross class/filter boundaries
    out = tmp_path / "fold.h5"
    attrs = explain_fold(model, data, cfg, out, classes=["a", "b"], sfreq=128.0,
                         attrs={"ch_names": [f"E{i}" for i in range(C)], "repetition": 0})
    assert attrs["n_samples"] == 12 and attrs["n_pairs"] > 0

    # everything, naively: all windows x filters x classes, one condition per pass
    xn = torch.as_tensor(data.x)
    ex = ConceptExplainer(model, device="cpu")
    full = {(c, f): ex.attribute(xn, c, [f] * len(xn)) for c in (0, 1) for f in range(16)}
    with h5py.File(out, "r") as h5:
        pairs = {k: h5["pairs"][k][()] for k in ("class", "filter", "sample", "relevance")}
        heat = h5["pairs/heatmaps"][()]
        rel_time = h5["pairs/relevance_time"][()]
        act_time = h5["pairs/activation_time"][()]
        totals = h5["samples/filter_relevance"][()]
        trial, onset = h5["samples/trial"][()], h5["samples/onset"][()]
        act_mean = h5["summary/activation_mean"][()]
        n_sel = h5["summary/n_selected"][()]
        ratio, flagged = h5["pairs/conservation"][()], h5["pairs/flagged"][()].astype(bool)
        heat_total = h5["pairs/heatmap_total"][()]
        stored = dict(h5.attrs)
    # conservation per selected heatmap, flagged beyond the tolerance
    np.testing.assert_allclose(ratio, heat_total / pairs["relevance"], rtol=1e-4)
    assert np.array_equal(flagged, ~(np.abs(ratio - 1) <= 0.05))
    assert stored["n_flagged"] == flagged.sum() and stored["conservation_tolerance"] == 0.05
    assert np.array_equal(trial, data.trial) and np.array_equal(onset, data.onset)
    _, act = ex.predict(xn)
    for c in (0, 1):
        for f in range(16):
            lr = full[c, f].layer_relevance[:, f].flatten(1, -2).sum(1)  # (n, T')
            assert rel_close(torch.as_tensor(totals[c, :, f]), lr.sum(-1), 1e-5)
    rows = zip(pairs["class"], pairs["filter"], pairs["sample"], strict=True)
    for row, (c, f, i) in enumerate(rows):
        ref = full[int(c), int(f)]
        assert rel_close(torch.as_tensor(heat[row]), ref.heatmap[i], 1e-5)
        assert rel_close(torch.as_tensor(rel_time[row]),
                         ref.layer_relevance[i, f].flatten(0, -2).sum(0), 1e-5)
        assert rel_close(torch.as_tensor(act_time[row]), act[i, f].flatten(0, -2).mean(0), 1e-6)
        assert data.y[i] == c  # by_class: windows of class c explain class c
    # selection = the rule applied to the naive totals
    for c in (0, 1):
        for f in range(16):
            want = select_samples(totals[c, :, f], share=0.2, candidates=data.y == c)
            got = pairs["sample"][(pairs["class"] == c) & (pairs["filter"] == f)]
            assert list(got) == list(want)
            assert n_sel[c, f] == len(want)
            if len(want):
                mean = act[want, f].flatten(1, -2).mean(1).mean(0)
                assert np.allclose(act_mean[c, f], mean.numpy(), atol=1e-6)
    assert stored["conservation_upper"] < 1e-4
    assert json.loads(stored["ch_names"]) == [f"E{i}" for i in range(C)]
    assert stored["init"] == "logit" and attrs["threads"] == 1
    # the file holds results only: where and how long it ran is returned, not stored
    assert not {"threads", "device", "wall_time_s"} & set(stored)


def test_options_top_k_correct_only_short_time(tmp_path):
    data = make_data(24, subject="s3")
    model = make_model(seed=11)
    cfg = ExplainConfig(selection="top_k", top_k=3, correctness="correct", short_time=True,
                        short_time_window=0.5, device="cpu", composite="EpsilonGammaBox")
    explain_fold(model, data, cfg, tmp_path / "f.h5", classes=["a", "b"], sfreq=128.0)
    with h5py.File(tmp_path / "f.h5", "r") as h5:
        assert h5["summary/n_selected"][()].max() <= 3
        sample = h5["pairs/sample"][()]
        y, pred = h5["samples/y"][()], h5["samples/pred"][()]
        assert np.all(y[sample] == pred[sample])
        assert h5["pairs/tf_relevance"].shape[1:] == (C, *h5["summary/tf_relevance_sum"].shape[3:])
        tf = h5["pairs/tf_relevance"][()].sum((2, 3))
        spec = h5["pairs/spectral_relevance"][()].sum(2)
        heat = h5["pairs/heatmaps"][()].sum(2)
        assert np.allclose(tf, heat, rtol=1e-4, atol=1e-6 * np.abs(heat).max())
        assert np.allclose(spec, heat, rtol=1e-4, atol=1e-6 * np.abs(heat).max())


def test_contrast_conservation_is_measured_against_its_start(tmp_path):
    data = make_data()
    model = make_model(seed=12, bias=False)
    cfg = ExplainConfig(composite="EpsilonPlus", init="contrast", device="cpu")
    attrs = explain_fold(model, data, cfg, tmp_path / "c.h5", classes=["a", "b"], sfreq=128.0)
    assert attrs["init"] == "contrast"
    assert attrs["conservation_upper"] < 1e-4  # the layer total equals z_c - z_other


def test_no_windows_is_an_error_and_leaves_no_file(tmp_path):
    empty = FoldData(np.zeros((0, C, T), np.float32), np.zeros(0, int), np.zeros(0, str),
                     np.zeros(0, int), np.zeros(0))
    with pytest.raises(ExplainError, match="no candidate windows"):
        explain_fold(make_model(), empty, ExplainConfig(device="cpu"), tmp_path / "x.h5",
                     classes=["a", "b"], sfreq=128.0)
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(ValueError, match="rows"):
        FoldData(np.zeros((2, C, T)), np.zeros(3), np.zeros(2), np.zeros(2), np.zeros(2))

"""Explain results store (eegcrp.store): xarray views, lazy fold access, stale files, keys."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr

import eegcrp
from eegcrp.errors import StoreError
from eegcrp.store import (
    DEFAULT_VARIABLES,
    FilterKey,
    FoldWriter,
    load_relevance,
    open_relevance,
    read_fold_attrs,
)
from tests.helpers import copy_study


def test_load_relevance_is_a_labelled_xarray_dataset(tiny_study):
    ds = eegcrp.load_relevance(tiny_study.output_dir)  # the study folder or <out>/explain
    assert isinstance(ds, xr.Dataset)
    assert set(ds.data_vars) == set(DEFAULT_VARIABLES)
    names = ["rep00_sub-S01", "rep00_sub-S02", "rep00_sub-S03"]
    assert list(ds["fold"].values) == names
    assert list(ds["subject"].values) == ["S01", "S02", "S03"]
    assert list(ds["repetition"].values) == [0, 0, 0]
    assert list(ds["class"].values) == ["left_hand", "right_hand"]
    act = ds["activation_mean"]
    assert act.dims == ("fold", "class", "filter", "layer_time")
    assert act.shape == (3, 2, 16, 256 // 4)
    one = act.sel(fold="rep00_sub-S02", **{"class": "right_hand"})
    assert one.dims == ("filter", "layer_time")
    assert ds["spectral_relevance_sum"].mean(dim="fold").dims == ("class", "filter", "channel",
                                                                   "freq")
    assert np.isclose(float(ds["freq"][1]), 0.5) and ds.attrs["sfreq"] == 128.0
    assert ds["ch_pos"].dims == ("channel", "xyz") and ds["ch_pos"].shape == (19, 3)
    assert ds.attrs["layer"] == "b2_conv2" and ds.attrs["init"] == "logit"
    assert json.loads(ds.attrs["bands"])["alpha"] == [8.0, 12.0]
    frame = ds[["n_selected", "selected_share"]].to_dataframe()
    assert len(frame) == 3 * 2 * 16
    heavy = load_relevance(tiny_study.output_dir, ["heatmap_mean"])
    assert heavy["heatmap_mean"].dims == ("fold", "class", "filter", "channel", "time")
    with pytest.raises(KeyError, match="unknown summaries"):
        load_relevance(tiny_study.output_dir, ["nope"])


def test_run_and_fold_readers(tiny_study):
    run = open_relevance(tiny_study.output_dir)
    assert run.names == ["rep00_sub-S01", "rep00_sub-S02", "rep00_sub-S03"]
    assert run.ground_truth["paradigm"] == "motor_imagery"
    assert run.channels["names"][0] == "Fp1" and not run.channels["bipolar"]
    bands = run.band_relevance()
    assert bands.dims == ("fold", "class", "filter", "channel", "band")
    assert list(bands["band"].values) == ["delta", "theta", "alpha", "beta", "gamma"]
    assert run.band_power({"alpha": (8, 12)}).shape[-1] == 1

    table = run.table()
    assert len(table) == 3 * 2 * 16 and not table.duplicated(["key", "class"]).any()
    assert table["key"].nunique() == 48
    assert FilterKey.parse(table["key"].iloc[0]) == FilterKey(0, "S01", "b2_conv2", 0)
    keys = run.filter_keys()
    assert len(keys) == 48 and len(set(keys)) == 48
    assert (table.selected_share[table.n_selected > 0] >= 0.2 - 1e-9).all()
    cons = run.conservation()
    assert len(cons) == 3 and (cons.conservation_upper < 1e-3).all()

    fold = run.fold((0, "S02"))
    assert fold is run.fold("rep00_sub-S02") and fold.subject == "S02"
    counts = fold.summary("n_selected").values
    c, f = np.unravel_index(np.argmax(counts), counts.shape)
    sel = fold.selection(int(c), int(f))
    assert len(sel) == counts[c, f] and set(sel["subject"]) == {"S02"}
    assert (sel["trial"] >= 0).all() and (sel["onset"] >= 0).all()
    heat = fold.heatmaps(fold.classes[c], int(f))
    assert heat.dims == ("sample", "channel", "time") and heat.shape == (counts[c, f], 19, 256)
    assert np.array_equal(heat["sample"].values, sel["sample"].to_numpy())
    spec = fold.spectral_relevance(int(c), int(f))
    assert np.allclose(spec.values.sum(-1), heat.values.sum(-1), rtol=1e-4,
                       atol=1e-6 * np.abs(heat.values).max())
    tf = fold.pair_array("tf_relevance", int(c), int(f))
    assert tf.dims == ("sample", "channel", "tf_time", "tf_freq")
    mean = fold.summary("heatmap_mean").values[c, f]
    assert np.allclose(mean, heat.values.mean(0), atol=1e-6)
    samples = fold.samples()
    assert {"subject", "trial", "onset", "y", "pred", "correct", "logit_left_hand"} <= set(samples)
    assert fold.filter_relevance().shape == (2, len(samples), 16)
    assert fold.key(3).id == "rep00/S02/b2_conv2/3"
    with fold.open() as h5:  # plain h5py for large arrays
        assert isinstance(h5["pairs/heatmaps"], h5py.Dataset)


def test_unlisted_fold_files_are_stale_and_ignored(tiny_study, tmp_path):
    config = copy_study(tiny_study, tmp_path / "copy")
    folds = config.output_dir / "explain" / "folds"
    (folds / "rep05_sub-S09.h5").write_bytes((folds / "rep00_sub-S01.h5").read_bytes())
    run = open_relevance(config.output_dir)
    assert [p.name for p in run.stale] == ["rep05_sub-S09.h5"]
    assert len(run.folds) == 3


def test_missing_or_unfinished_store_is_a_clear_error(tiny_study, tmp_path):
    with pytest.raises(StoreError, match="no explain results"):
        load_relevance(tmp_path)
    config = copy_study(tiny_study, tmp_path / "copy")
    manifest = config.output_dir / "explain" / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "complete": False}))
    with pytest.raises(StoreError, match="did not finish"):
        open_relevance(config.output_dir)


def test_fold_write_is_atomic(tmp_path):
    target = tmp_path / "folds" / "rep00_sub-1.h5"
    with pytest.raises(RuntimeError, match="boom"), FoldWriter(target) as writer:
        writer.write_attrs({"a": 1})
        raise RuntimeError("boom")
    assert not target.exists()
    assert list((tmp_path / "folds").iterdir()) == []
    with FoldWriter(target) as writer:
        writer.write_attrs({"classes": ["a"], "bands": {"x": [1, 2]}, "none": None})
    attrs = read_fold_attrs(target)
    assert attrs["classes"] == ["a"] and attrs["bands"] == {"x": [1, 2]} and attrs["none"] == ""


def test_filter_key_round_trip():
    key = FilterKey(3, "S07", "b2_conv2", 11)
    assert key.fold == "rep03_sub-S07" and FilterKey.parse(key.id) == key
    with pytest.raises(ValueError, match="not a filter key"):
        FilterKey.parse("S07/11")

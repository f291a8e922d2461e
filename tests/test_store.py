"""Explain results store (eegcrp.store) and the fold runner: round trip, atomicity, resume."""

from __future__ import annotations

import json
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from eegcrp.config import ExplainConfig, StudyConfig
from eegcrp.crp import explain_fold, run_explain
from eegcrp.store import FoldWriter, Labelled, StoreError, load_relevance, read_fold_attrs
from tests.test_crp import C, T, make_data, make_model, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_study(tmp_path, subjects=("s1", "s2", "s3"), repetitions=(0,), **explain):
    """Training checkpoints (+ their done-marker JSON) for every fold, and a config."""
    data = make_data(subjects=subjects)
    folds = tmp_path / "training" / "folds"
    folds.mkdir(parents=True)
    for rep in repetitions:
        for k, sub in enumerate(subjects):
            name = f"rep{rep:02d}_sub-{sub}"
            save_checkpoint(folds / f"{name}.pt", make_model(seed=10 * rep + k), data, sub, rep)
            (folds / f"{name}.json").write_text("{}")
    config = SimpleNamespace(output_dir=tmp_path,
                             explain=ExplainConfig(device="cpu", **explain))
    return config, data


def test_config_section_defaults():
    cfg = ExplainConfig()
    assert cfg.layer == "b2_conv2" and cfg.composite == "EpsilonAlpha2Beta1"
    assert cfg.first_layer_rule is None and cfg.zero_bias and cfg.share == 0.2
    assert cfg.bands["alpha"] == (8.0, 12.0) and cfg.bands["gamma"] == (30.0, 60.0)
    study = StudyConfig.model_validate({"dataset": {"kind": "simulated"}})
    assert study.explain == cfg
    with pytest.raises(ValueError):
        ExplainConfig(composite="LRP")
    with pytest.raises(ValueError):
        ExplainConfig(bands={"bad": (8, 4)})


def test_round_trip(tmp_path):
    config, data = make_study(tmp_path, short_time=True)
    result = run_explain(config, data, progress=False)
    assert sorted(result["computed"]) == ["rep00_sub-s1", "rep00_sub-s2", "rep00_sub-s3"]
    run = load_relevance(tmp_path)  # the study folder works as well as <out>/explain
    assert run.names == ["rep00_sub-s1", "rep00_sub-s2", "rep00_sub-s3"]
    meta = run.meta
    assert meta["layer"] == "b2_conv2" and meta["composite"] == "EpsilonAlpha2Beta1"
    assert meta["zero_bias"] is True and meta["selection"] == "share"
    assert meta["ch_names"] == data.ch_names and meta["classes"] == ["a", "b"]
    assert meta["sfreq"] == 128.0 and len(meta["freqs"]) == T // 2 + 1
    assert np.isclose(meta["freqs"][1], 1.0)

    act = run.summary("activation_mean")
    assert act.dims == ("fold", "class", "filter", "layer_time")
    assert act.shape == (3, 2, 16, T // 4)
    assert act.coords["fold"] == run.names and act.coords["class"] == ["a", "b"]
    one = act.sel(fold="rep00_sub-s2")
    assert one.dims == ("class", "filter", "layer_time")

    bands = run.band_relevance()
    assert bands.dims == ("fold", "class", "filter", "channel", "band")
    assert bands.coords["band"] == ["delta", "theta", "alpha", "beta", "gamma"]
    power = run.band_power({"alpha": (8, 12)})
    assert power.shape[-1] == 1

    table = run.table()
    assert len(table) == 3 * 2 * 16
    assert set(table.columns) >= {"repetition", "subject", "class", "filter", "n_selected",
                                  "selected_share"}
    assert (table.selected_share[table.n_selected > 0] >= 0.2 - 1e-9).all()
    cons = run.conservation()
    assert len(cons) == 3 and (cons.conservation_upper < 1e-3).all()

    fold = run.fold((0, "s2"))
    assert fold is run.fold("rep00_sub-s2") and fold.subject == "s2"
    counts = fold.summary("n_selected").values
    c, f = np.unravel_index(np.argmax(counts), counts.shape)
    sel = fold.selection(int(c), int(f))
    assert len(sel["sample"]) == counts[c, f] and set(sel["subject"]) == {"s2"}
    heat = fold.heatmaps(fold.classes[c], int(f))
    assert heat.dims == ("sample", "channel", "time") and heat.shape == (counts[c, f], C, T)
    assert np.array_equal(heat.coords["sample"], sel["sample"])
    spec = fold.spectral_relevance(int(c), int(f))
    assert np.allclose(spec.values.sum(-1), heat.values.sum(-1), rtol=1e-4,
                       atol=1e-6 * np.abs(heat.values).max())
    assert fold.spectra(int(c), int(f)).shape == spec.shape
    tf = fold.pair_array("tf_relevance", int(c), int(f))
    assert tf.dims == ("sample", "channel", "tf_time", "tf_freq")
    mean = fold.summary("heatmap_mean").values[c, f]
    assert np.allclose(mean, heat.values.mean(0), atol=1e-6)
    samples = fold.samples()
    assert len(samples["y"]) == 12 and samples["correct"].dtype == bool
    assert fold.filter_relevance().shape == (2, 12, 16)
    with fold.open() as h5:  # lazy access for large arrays
        assert isinstance(h5["pairs/heatmaps"], h5py.Dataset)

    index = json.loads((tmp_path / "explain" / "index.json").read_text())
    assert set(index["folds"]) == set(run.names)
    assert index["explain"]["layer"] == "b2_conv2" and index["subjects"] == ["s1", "s2", "s3"]


def test_resume_skips_done_folds_and_redoes_changed(tmp_path):
    config, data = make_study(tmp_path)
    run_explain(config, data, progress=False)
    path = tmp_path / "explain" / "folds" / "rep00_sub-s1.h5"
    mtime = path.stat().st_mtime_ns
    again = run_explain(config, data, progress=False)
    assert again["computed"] == [] and len(again["skipped"]) == 3
    assert path.stat().st_mtime_ns == mtime
    # parallelism and batch size do not change results: still done
    config.explain = ExplainConfig(device="cpu", batch_size=5)
    assert run_explain(config, data, progress=False)["computed"] == []
    # a changed result setting recomputes
    config.explain = ExplainConfig(device="cpu", share=0.5)
    redo = run_explain(config, data, progress=False)
    assert len(redo["computed"]) == 3
    assert read_fold_attrs(path)["share"] == 0.5
    # a deleted fold is recomputed alone
    path.unlink()
    assert run_explain(config, data, progress=False)["computed"] == ["rep00_sub-s1"]


def test_fold_write_is_atomic(tmp_path):
    target = tmp_path / "folds" / "rep00_sub-1.h5"
    with pytest.raises(RuntimeError, match="boom"), FoldWriter(target) as writer:
        writer.write_attrs({"a": 1})
        raise RuntimeError("boom")
    assert not target.exists()
    assert list((tmp_path / "folds").iterdir()) == []
    # a crashing fold leaves no file either
    data = make_data()
    ckpt = tmp_path / "rep00_sub-s1.pt"
    save_checkpoint(ckpt, make_model(), data, "s1")
    bad = ExplainConfig(device="cpu", layer="b1_bn1")
    with pytest.raises(ValueError, match="not a conv layer"):
        explain_fold(ckpt, data, bad, tmp_path / "f.h5")
    assert not (tmp_path / "f.h5").exists()


def test_parallel_folds_loky(tmp_path):
    config, data = make_study(tmp_path, subjects=("s1", "s2"), n_jobs=2)
    result = run_explain(config, data, progress=False)
    assert sorted(result["computed"]) == ["rep00_sub-s1", "rep00_sub-s2"]
    serial_dir = tmp_path / "serial"
    config.explain = ExplainConfig(device="cpu", n_jobs=1)
    run_explain(config, data, progress=False, run_dir=serial_dir)
    a, b = load_relevance(tmp_path / "explain"), load_relevance(serial_dir)
    assert np.allclose(a.summary("relevance_mean").values, b.summary("relevance_mean").values,
                       equal_nan=True, atol=1e-6)


def test_errors(tmp_path):
    with pytest.raises(StoreError, match="no explain results"):
        load_relevance(tmp_path)
    from eegcrp.crp import ExplainError

    config = SimpleNamespace(output_dir=tmp_path, explain=ExplainConfig(device="cpu"))
    with pytest.raises(ExplainError, match="no trained folds"):
        run_explain(config, make_data(), progress=False)
    labelled = Labelled(np.zeros((2, 3)), ("a", "b"), {"a": ["x", "y"]})
    with pytest.raises(KeyError):
        labelled.sel(a="z")
    assert labelled.sum("b").dims == ("a",)
    with pytest.raises(ValueError):
        Labelled(np.zeros(3), ("a", "b"))

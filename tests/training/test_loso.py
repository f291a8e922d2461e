"""Leave-one-subject-out training (eegcrp.training.loso): splits, seeds, runs, resume,
parallel backends."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from eegcrp.config import ModelConfig
from eegcrp.errors import EEGCRPError, TrainingError
from eegcrp.io import load_checkpoint
from eegcrp.stats import pooled_metrics, summarize
from eegcrp.training import LOSOTrainer, fold_seeds, loso_splits, normalize_windows
from tests.helpers import RESULT_COLUMNS, make_dataset, result_columns, tconfig
from tests.helpers import TRAIN_SFREQ as SFREQ


@pytest.mark.parametrize("n_val", [0, 1, 2])
def test_loso_splits_never_leak_the_test_subject(n_val):
    subjects = [f"S{i}" for i in range(6)]
    seeds = {s: fold_seeds(3, 0, s)[0] for s in subjects}
    for rng in (np.random.default_rng(0), seeds.__getitem__):
        folds = list(loso_splits(subjects, n_val, rng))
        assert [test for test, _, _ in folds] == subjects
        for test, train, val in folds:
            assert test not in train and test not in val
            assert not set(train) & set(val)
            assert sorted([*train, *val]) == sorted(set(subjects) - {test})
            assert len(val) == n_val


def test_fold_specs_are_deterministic_and_never_leak():
    subjects = [f"{i:02d}" for i in range(1, 8)]
    trainer = LOSOTrainer(None, tconfig(repetitions=3, validation_subjects=2))
    specs = trainer.fold_specs(subjects)
    assert specs == trainer.fold_specs(subjects)
    assert len(specs) == 21 and len({s.name for s in specs}) == 21
    for spec in specs:
        assert spec.subject not in spec.train_subjects + spec.val_subjects
        assert len(spec.val_subjects) == 2
    # validation subjects and seeds differ between repetitions
    assert len({spec.val_subjects for spec in specs if spec.subject == "01"}) > 1
    assert len({spec.torch_seed for spec in specs}) == 21
    # thesis protocol: no validation, the thesis' seeds r * n_subjects + k
    thesis = LOSOTrainer(None, tconfig(repetitions=2, protocol="thesis")).fold_specs(subjects)
    assert all(not s.val_subjects for s in thesis)
    assert [s.torch_seed for s in thesis] == list(range(14))


def test_validation_fraction_and_inner_cv_never_see_the_test_subject():
    subjects = [f"{i:02d}" for i in range(1, 10)]
    specs = LOSOTrainer(None, tconfig(validation_subjects=0.25)).fold_specs(subjects)
    assert all(len(s.val_subjects) == 2 for s in specs)  # round(0.25 * 8)
    assert all(s.subject not in s.val_subjects + s.train_subjects for s in specs)
    inner = LOSOTrainer(None, tconfig(model_selection="inner_cv")).fold_specs(subjects)
    assert all(not s.val_subjects and len(s.train_subjects) == 8 for s in inner)


def test_inner_cv_chooses_epochs_from_training_subjects_only(dataset, tmp_path):
    cfg = tconfig(model_selection="inner_cv", inner_folds=2, max_epochs=4,
                  monitor="val_balanced_accuracy")
    trainer = LOSOTrainer(None, cfg).fit(dataset, tmp_path, progress=False)
    for record in trainer.folds_:
        inner = record["inner"]
        held = [s for group in inner["groups"] for s in group]
        assert sorted(held) == sorted(record["train_subjects"])
        assert record["test_subject"] not in held and record["n_val"] == 0
        assert record["epochs_trained"] == inner["epochs"] == record["best_epoch"]
        assert len(inner["mean_score"]) == 4
        best = np.flatnonzero(np.isclose(inner["mean_score"], min(inner["mean_score"])))
        assert inner["epochs"] - 1 in best
    again = LOSOTrainer(None, cfg).fit(dataset, tmp_path / "again", progress=False)
    pd.testing.assert_frame_equal(result_columns(again), result_columns(trainer))


def test_aligned_run_records_its_maps_and_learns(dataset, tmp_path):
    trainer = LOSOTrainer(None, tconfig(alignment="euclidean")).fit(dataset, tmp_path,
                                                                     progress=False)
    assert trainer.metrics_.accuracy.mean() > 0.8
    record = trainer.folds_[0]
    assert record["alignment"] == "euclidean"
    _, meta = load_checkpoint(tmp_path / "folds" / f"{record['name']}.pt")
    maps = meta["alignment"]["maps"]
    assert meta["alignment"]["method"] == "euclidean"
    assert sorted(maps) == sorted(dataset.subjects)  # the test subject's own map included
    assert tuple(maps["01"].shape) == (4, 4)


def test_too_many_validation_subjects_is_an_error():
    with pytest.raises(TrainingError, match="validation_subjects"):
        list(loso_splits(["a", "b", "c"], 2, 0))


def test_training_learns_the_planted_signal(run):
    metrics = run.metrics_
    assert list(metrics.test_subject) == ["01", "02", "03", "04"]
    assert metrics.accuracy.mean() > 0.9
    assert metrics.roc_auc.mean() > 0.9
    assert (metrics.n_val == 40).all() and (metrics.n_test == 40).all()
    assert (metrics.n_train == 80).all()
    summary = summarize(metrics)
    assert summary.loc["accuracy", "mean"] == pytest.approx(metrics.accuracy.mean())
    pooled = pooled_metrics(run.folds_)
    assert len(pooled) == 1 and pooled.n_test[0] == 160


def test_shuffled_labels_stay_near_chance(tmp_path):
    data = make_dataset(shuffle_labels=True, seed=1)
    trainer = LOSOTrainer(ModelConfig(), tconfig()).fit(data, tmp_path, progress=False)
    assert 0.3 < trainer.metrics_.accuracy.mean() < 0.7


def test_run_folder_layout_and_checkpoints(run, dataset):
    out = run.out_dir_
    csv = pd.read_csv(out / "metrics.csv", dtype={"test_subject": str})
    assert len(csv) == 4
    assert set(RESULT_COLUMNS) | {"wall_time_s"} <= set(csv.columns)
    record = json.loads((out / "folds" / "rep00_sub-02.json").read_text())
    assert record["test_subject"] == "02" and "02" not in record["train_subjects"]
    assert np.sum(record["confusion_matrix"]) == 40
    assert len(record["history"]["train_loss"]) == record["epochs_trained"]
    assert len(record["history"]["val_acc"]) == record["epochs_trained"]
    assert 1 <= record["best_epoch"] <= record["epochs_trained"]
    assert record["identity"] == "id-abc" and record["threads"] == 1
    assert record["device"] == "cpu" and record["torch"] == torch.__version__

    model, meta = load_checkpoint(out / "folds" / "rep00_sub-02.pt")
    assert meta["ch_names"] == dataset.ch_names and meta["classes"] == dataset.classes
    assert meta["sfreq"] == SFREQ and meta["n_times"] == 128
    assert meta["preprocessing_key"] == "prep"
    assert meta["identity"] == record["identity"]
    assert meta["model_config"]["variant"] == "eegnet"
    assert {"torch", "numpy"} <= set(meta["versions"])
    assert not model.training
    x, _, _ = dataset.get_data(["02"])
    with torch.no_grad():
        x_norm = normalize_windows(x, ddof=meta["normalization"]["ddof"])
        proba = torch.softmax(model(torch.as_tensor(x_norm)).double(), 1).numpy()
    np.testing.assert_allclose(proba, record["predictions"]["proba"], atol=1e-5)


def test_same_seed_same_metrics(run, dataset, tmp_path):
    again = LOSOTrainer(ModelConfig(), tconfig()).fit(dataset, tmp_path, identity="id-abc",
                                                      progress=False)
    pd.testing.assert_frame_equal(result_columns(again), result_columns(run))


def test_resume_skips_finished_folds_and_retrains_damaged_ones(dataset, tmp_path):
    cfg = tconfig(max_epochs=4, repetitions=1)
    first = LOSOTrainer(None, cfg).fit(dataset, tmp_path, identity="A", progress=False)
    assert len(first.trained_) == 4 and first.skipped_ == []
    folds = tmp_path / "folds"
    stamp = {p.name: p.stat().st_mtime_ns for p in folds.iterdir()}

    # more repetitions: only the new folds are trained
    more = LOSOTrainer(None, cfg.model_copy(update={"repetitions": 2})).fit(
        dataset, tmp_path, identity="A", progress=False
    )
    assert sorted(more.skipped_) == sorted(first.trained_)
    assert all(name.startswith("rep01") for name in more.trained_) and len(more.trained_) == 4
    assert all(p.stat().st_mtime_ns == stamp[p.name] for p in folds.iterdir() if p.name in stamp)
    assert len(more.metrics_) == 8

    # a run killed mid-fold (checkpoint without record), a truncated checkpoint and an
    # unreadable record are trained again; everything else is reused
    (folds / "rep01_sub-03.json").unlink()
    pt = folds / "rep00_sub-02.pt"
    pt.write_bytes(pt.read_bytes()[:200])
    (folds / "rep01_sub-04.json").write_text("{not json")
    again = LOSOTrainer(None, cfg.model_copy(update={"repetitions": 2})).fit(
        dataset, tmp_path, identity="A", progress=False
    )
    assert sorted(again.trained_) == ["rep00_sub-02", "rep01_sub-03", "rep01_sub-04"]
    pd.testing.assert_frame_equal(result_columns(again), result_columns(more))
    load_checkpoint(pt)  # intact again

    # another identity reuses nothing
    other = LOSOTrainer(None, cfg).fit(dataset, tmp_path, identity="B", progress=False)
    assert len(other.trained_) == 4


def test_thesis_protocol_run(tmp_path):
    data = make_dataset(n_subjects=3, n_windows=20)
    trainer = LOSOTrainer(ModelConfig(variant="thesis"),
                          tconfig(protocol="thesis", max_epochs=3, validation_subjects=1))
    metrics = trainer.fit(data, tmp_path, progress=False).metrics_
    assert (metrics.epochs_trained == 3).all() and (metrics.n_val == 0).all()
    assert list(metrics.seed) == [0, 1, 2]
    _, meta = load_checkpoint(tmp_path / "folds" / "rep00_sub-01.pt")
    assert meta["normalization"]["ddof"] == 1


def test_multiclass_run_reports_ovr_auc(tmp_path):
    data = make_dataset(n_subjects=3, n_windows=30, n_classes=3)
    metrics = LOSOTrainer(None, tconfig(max_epochs=3, validation_subjects=0)).fit(
        data, tmp_path, progress=False
    ).metrics_
    assert metrics.roc_auc.between(0, 1).all()
    assert (metrics.epochs_trained == 3).all() and (metrics.best_epoch == 3).all()


# --------------------------------------------------------------------------- parallel
def test_dask_equals_serial(run, dataset, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, host="127.0.0.1",
        protocol="tcp", dashboard_address=":0",
    ) as cluster:
        cfg = tconfig(backend="dask", dask_address=cluster.scheduler_address, n_jobs=2)
        trainer = LOSOTrainer(ModelConfig(), cfg).fit(dataset, tmp_path, identity="id-abc",
                                                      progress=False)
    assert sorted(trainer.trained_) == sorted(run.trained_)
    pd.testing.assert_frame_equal(result_columns(trainer), result_columns(run))


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_ray_backend_without_ray_is_a_clear_error(dataset, tmp_path):
    cfg = tconfig(backend="ray", n_jobs=2, max_epochs=1)
    with pytest.raises(EEGCRPError, match=r"pip install 'eegcrp\[ray\]'"):
        LOSOTrainer(None, cfg).fit(dataset, tmp_path, progress=False)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_loky_processes_equal_serial(tmp_path):
    data = make_dataset(n_subjects=3, n_windows=20)
    cfg = tconfig(max_epochs=3)
    serial = LOSOTrainer(None, cfg).fit(data, tmp_path / "serial", progress=False)
    parallel = LOSOTrainer(None, cfg.model_copy(update={"n_jobs": 2})).fit(
        data, tmp_path / "loky", progress=False
    )
    pd.testing.assert_frame_equal(result_columns(parallel), result_columns(serial))


@pytest.mark.slow
def test_dask_local_cluster_started_by_the_trainer(tmp_path):
    pytest.importorskip("distributed")
    data = make_dataset(n_subjects=3, n_windows=20)
    cfg = tconfig(max_epochs=2)
    serial = LOSOTrainer(None, cfg).fit(data, tmp_path / "serial", progress=False)
    local = LOSOTrainer(None, cfg.model_copy(update={"backend": "dask", "n_jobs": 2})).fit(
        data, tmp_path / "dask", progress=False
    )
    pd.testing.assert_frame_equal(result_columns(local), result_columns(serial))


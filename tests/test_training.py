"""LOSO training engine (eegcrp.training) on tiny synthetic datasets."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from eegcrp.config import ModelConfig, TrainingConfig
from eegcrp.data.base import EEGDataset, make_epochs
from eegcrp.models import build_model
from eegcrp.training import (
    LOSOTrainer,
    TrainingError,
    fold_seeds,
    load_checkpoint,
    loso_splits,
    normalize_windows,
    pooled_metrics,
    summarize,
    train_model,
)

SFREQ = 128.0
RESULT_COLUMNS = ["repetition", "test_subject", "accuracy", "balanced_accuracy", "f1_macro",
                  "roc_auc", "n_train", "n_val", "n_test", "epochs_trained", "best_epoch",
                  "seed"]

# PyTorch warns that 'same' padding of even kernels copies the input (intended).
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def make_dataset(
    n_subjects: int = 4, n_windows: int = 40, n_channels: int = 4, n_times: int = 128,
    n_classes: int = 2, shuffle_labels: bool = False, seed: int = 0,
) -> EEGDataset:
    """Noise plus a 10 Hz oscillation on the channel of the window's class (volts)."""
    rng = np.random.default_rng(seed)
    names = [f"class{i}" for i in range(n_classes)]
    event_id = {name: i + 1 for i, name in enumerate(names)}
    t = np.arange(n_times) / SFREQ
    epochs = {}
    for s in range(n_subjects):
        labels = np.arange(n_windows) % n_classes
        x = rng.standard_normal((n_windows, n_channels, n_times))
        gain = rng.uniform(0.5, 2.0)  # subjects differ in amplitude
        for i, label in enumerate(labels):
            x[i, label % n_channels] += 2.0 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6.3))
        if shuffle_labels:
            labels = rng.permutation(labels)
        subject = f"{s + 1:02d}"
        epochs[subject] = make_epochs(
            gain * 1e-5 * x, ch_names=[f"E{i}" for i in range(n_channels)], sfreq=SFREQ,
            labels=[names[k] for k in labels], event_id=event_id, subject=subject,
            montage=None,
        )
    return EEGDataset(name="synthetic", epochs=epochs, task="motor_imagery")


def tconfig(**kw) -> TrainingConfig:
    base = dict(repetitions=1, max_epochs=15, batch_size=16, learning_rate=1e-2, patience=5,
                validation_subjects=1, threads=1, seed=7)
    return TrainingConfig(**{**base, **kw})


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tests calling train_model directly use one thread, like the folds (tconfig)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def dataset() -> EEGDataset:
    return make_dataset()


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    """The reference run: default protocol, serial, 4 folds."""
    out = tmp_path_factory.mktemp("run")
    return LOSOTrainer(ModelConfig(), tconfig()).fit(dataset, out, "prep-abc", progress=False)


def _results(trainer: LOSOTrainer) -> pd.DataFrame:
    return trainer.metrics_[RESULT_COLUMNS]


# --------------------------------------------------------------------------- splits
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


def test_too_many_validation_subjects_is_an_error():
    with pytest.raises(TrainingError, match="validation_subjects"):
        list(loso_splits(["a", "b", "c"], 2, 0))


def test_normalize_windows():
    rng = np.random.default_rng(0)
    x = rng.normal(3e-5, 2e-5, size=(5, 3, 50))
    x[2] = 1e-6  # constant window
    z = normalize_windows(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    good = [0, 1, 3, 4]
    np.testing.assert_allclose(z[good].mean(axis=(1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(z[good].std(axis=(1, 2)), 1, atol=1e-5)
    assert np.all(z[2] == 0)
    z1 = normalize_windows(x, ddof=1)
    np.testing.assert_allclose(z1[good].std(axis=(1, 2), ddof=1), 1, atol=1e-5)
    np.testing.assert_allclose(normalize_windows(x, chunk=2), z)


# --------------------------------------------------------------------------- one model
def test_early_stopping_restores_the_best_weights(dataset):
    x, y, groups = dataset.get_data()
    x = normalize_windows(x)
    rng = np.random.default_rng(1)
    y_noise = rng.permutation(y)  # unlearnable: the validation loss soon rises
    train, val = np.isin(groups, ["01", "02", "03"]), groups == "04"
    torch.manual_seed(0)
    model = build_model(None, 4, 128, 2, SFREQ)
    cfg = tconfig(max_epochs=200, patience=4, learning_rate=3e-2)
    hist = train_model(model, x[train], y_noise[train], x[val], y_noise[val], config=cfg,
                       rng=rng, device="cpu")
    assert hist["stopped_early"]
    assert hist["epochs_trained"] == hist["best_epoch"] + cfg.patience < 200
    assert len(hist["val_loss"]) == len(hist["train_loss"]) == hist["epochs_trained"]
    best = hist["val_loss"][hist["best_epoch"] - 1]
    assert best == min(hist["val_loss"])
    assert hist["val_loss"][-1] > best
    # the returned model is the best epoch's, not the last one's
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(x[val]))
    counts = np.bincount(y_noise[val], minlength=2)
    weights = torch.tensor(len(y_noise[val]) / (2 * counts), dtype=torch.float32)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y_noise[val]), weight=weights)
    assert float(loss) == pytest.approx(best, rel=1e-5)


def test_monitor_val_accuracy_restores_the_most_accurate_epoch(dataset):
    x, y, groups = dataset.get_data()
    x = normalize_windows(x)
    train = np.isin(groups, ["01", "02", "03"])
    # imbalanced validation subject (all of class 0, a third of class 1): the monitor must
    # use balanced accuracy, which plain accuracy would not equal here
    val = np.flatnonzero(groups == "04")
    val = np.concatenate([val[y[val] == 0], val[y[val] == 1][::3]])
    torch.manual_seed(0)
    model = build_model(None, 4, 128, 2, SFREQ)
    cfg = tconfig(max_epochs=12, patience=12, monitor="val_accuracy")
    hist = train_model(model, x[train], y[train], x[val], y[val], config=cfg,
                       rng=np.random.default_rng(0), device="cpu")
    bacc = np.array(hist["val_balanced_acc"])
    best = hist["best_epoch"] - 1
    assert bacc[best] == bacc.max()
    # ties in accuracy are broken by the lower loss
    tied = np.flatnonzero(bacc == bacc.max())
    assert hist["val_loss"][best] == min(hist["val_loss"][i] for i in tied)
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(x[val])).argmax(1).numpy()
    assert balanced_accuracy_score(y[val], pred) == pytest.approx(bacc.max())
    assert np.mean(pred == y[val]) == pytest.approx(hist["val_acc"][best])


def test_thesis_protocol_trains_fixed_epochs_unshuffled(dataset):
    x, y, _ = dataset.get_data()
    x = normalize_windows(x[:80], ddof=1)
    cfg = tconfig(protocol="thesis", max_epochs=3)
    states = []
    for seed in (1, 2):  # different shuffling rngs: no effect, the order is fixed
        torch.manual_seed(0)
        model = build_model(ModelConfig(variant="thesis"), 4, 128, 2, SFREQ)
        hist = train_model(model, x, y[:80], x[:20], y[:20], config=cfg,
                           rng=np.random.default_rng(seed), device="cpu")
        assert hist["epochs_trained"] == 3 and hist["best_epoch"] == 3
        assert hist["val_loss"] == [] and not hist["stopped_early"]
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key])


# --------------------------------------------------------------------------- LOSO runs
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
    out = run.run_dir_
    assert out.name == "training"
    csv = pd.read_csv(out / "metrics.csv", dtype={"test_subject": str})
    assert len(csv) == 4
    assert set(RESULT_COLUMNS) | {"wall_time_s"} <= set(csv.columns)
    record = json.loads((out / "folds" / "rep00_sub-02.json").read_text())
    assert record["test_subject"] == "02" and "02" not in record["train_subjects"]
    assert np.sum(record["confusion_matrix"]) == 40
    assert len(record["history"]["train_loss"]) == record["epochs_trained"]
    assert len(record["history"]["val_acc"]) == record["epochs_trained"]
    assert 1 <= record["best_epoch"] <= record["epochs_trained"]
    assert not list((out / "folds").glob("*.tmp"))

    model, meta = load_checkpoint(out / "folds" / "rep00_sub-02.pt")
    assert meta["ch_names"] == dataset.ch_names and meta["classes"] == dataset.classes
    assert meta["sfreq"] == SFREQ and meta["n_times"] == 128
    assert meta["preprocessing_key"] == "prep-abc"
    assert meta["config_hash"] == record["config_hash"]
    assert meta["model_config"]["variant"] == "eegnet"
    assert {"torch", "numpy"} <= set(meta["versions"])
    assert not model.training
    x, _, _ = dataset.get_data(["02"])
    with torch.no_grad():
        x_norm = normalize_windows(x, ddof=meta["normalization"]["ddof"])
        proba = torch.softmax(model(torch.as_tensor(x_norm)).double(), 1).numpy()
    np.testing.assert_allclose(proba, record["predictions"]["proba"], atol=1e-5)


def test_same_seed_same_metrics(run, dataset, tmp_path):
    again = LOSOTrainer(ModelConfig(), tconfig()).fit(dataset, tmp_path, "prep-abc",
                                                      progress=False)
    pd.testing.assert_frame_equal(_results(again), _results(run))


def test_resume_skips_finished_folds(dataset, tmp_path):
    cfg = tconfig(max_epochs=4, repetitions=1)
    first = LOSOTrainer(None, cfg).fit(dataset, tmp_path, progress=False)
    assert len(first.trained_) == 4 and first.skipped_ == []
    folds = tmp_path / "training" / "folds"
    stamp = {p.name: p.stat().st_mtime_ns for p in folds.iterdir()}

    # more repetitions: only the new folds are trained
    more = LOSOTrainer(None, cfg.model_copy(update={"repetitions": 2})).fit(
        dataset, tmp_path, progress=False
    )
    assert sorted(more.skipped_) == sorted(first.trained_)
    assert all(name.startswith("rep01") for name in more.trained_) and len(more.trained_) == 4
    assert all(p.stat().st_mtime_ns == stamp[p.name] for p in folds.iterdir() if p.name in stamp)
    assert len(more.metrics_) == 8

    # a run killed mid-fold: checkpoint without JSON and a stray temporary file
    (folds / "rep01_sub-03.json").unlink()
    (folds / ".rep01_sub-03.pt.123.tmp").write_bytes(b"partial")
    again = LOSOTrainer(None, cfg.model_copy(update={"repetitions": 2})).fit(
        dataset, tmp_path, progress=False
    )
    assert again.trained_ == ["rep01_sub-03"]
    assert not list(folds.glob("*.tmp")) and not list(folds.glob(".*.tmp"))
    pd.testing.assert_frame_equal(_results(again), _results(more))

    # another configuration refuses to mix with the finished run
    with pytest.raises(TrainingError, match="another configuration"):
        LOSOTrainer(None, cfg.model_copy(update={"learning_rate": 0.5})).fit(
            dataset, tmp_path, progress=False
        )


def test_thesis_protocol_run(tmp_path):
    data = make_dataset(n_subjects=3, n_windows=20)
    trainer = LOSOTrainer(ModelConfig(variant="thesis"),
                          tconfig(protocol="thesis", max_epochs=3, validation_subjects=1))
    metrics = trainer.fit(data, tmp_path, progress=False).metrics_
    assert (metrics.epochs_trained == 3).all() and (metrics.n_val == 0).all()
    assert list(metrics.seed) == [0, 1, 2]
    _, meta = load_checkpoint(tmp_path / "training" / "folds" / "rep00_sub-01.pt")
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
        trainer = LOSOTrainer(ModelConfig(), cfg).fit(dataset, tmp_path, "prep-abc",
                                                      progress=False)
    assert sorted(trainer.trained_) == sorted(run.trained_)
    pd.testing.assert_frame_equal(_results(trainer), _results(run))


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_ray_backend_without_ray_is_a_clear_error(dataset, tmp_path):
    cfg = tconfig(backend="ray", n_jobs=2, max_epochs=1)
    with pytest.raises(TrainingError, match=r"pip install 'eegcrp\[ray\]'"):
        LOSOTrainer(None, cfg).fit(dataset, tmp_path, progress=False)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_loky_processes_equal_serial(tmp_path):
    data = make_dataset(n_subjects=3, n_windows=20)
    cfg = tconfig(max_epochs=3)
    serial = LOSOTrainer(None, cfg).fit(data, tmp_path / "serial", progress=False)
    parallel = LOSOTrainer(None, cfg.model_copy(update={"n_jobs": 2})).fit(
        data, tmp_path / "loky", progress=False
    )
    pd.testing.assert_frame_equal(_results(parallel), _results(serial))


@pytest.mark.slow
def test_dask_local_cluster_started_by_the_trainer(tmp_path):
    pytest.importorskip("distributed")
    data = make_dataset(n_subjects=3, n_windows=20)
    cfg = tconfig(max_epochs=2)
    serial = LOSOTrainer(None, cfg).fit(data, tmp_path / "serial", progress=False)
    local = LOSOTrainer(None, cfg.model_copy(update={"backend": "dask", "n_jobs": 2})).fit(
        data, tmp_path / "dask", progress=False
    )
    pd.testing.assert_frame_equal(_results(local), _results(serial))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tunables")
def test_retain_freed_memory_is_process_wide_and_respects_user_tunables():
    code = ("from eegcrp.training import retain_freed_memory as r; "
            "print(r(), r())")
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES",
                                                            "MALLOC_MMAP_THRESHOLD_",
                                                            "MALLOC_TRIM_THRESHOLD_")}
    glibc = platform.libc_ver()[0] == "glibc"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(glibc)] * 2  # applied once, then cached
    env["MALLOC_TRIM_THRESHOLD_"] = "1000000"  # a user's own choice is left alone
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_balanced_accuracy_ties_compare_equal():
    # equal balanced accuracies from different per-class splits must tie exactly, or the
    # val_accuracy monitor skips its tie-break on the loss (float32 gave 0.8250000477 vs
    # 0.8249999881 for 99 + 99 and 100 + 98 of 120 + 120)
    from eegcrp.training import _balanced_accuracy

    y = torch.tensor([0] * 120 + [1] * 120)

    def pred(k0: int, k1: int) -> torch.Tensor:
        return torch.tensor([0] * k0 + [1] * (120 - k0) + [1] * k1 + [0] * (120 - k1))

    for total in range(2, 239):
        splits = [(k, total - k) for k in range(max(0, total - 120), min(120, total) + 1)]
        values = {_balanced_accuracy(y, pred(*s)) for s in splits}
        assert values == {round(total / 240, 12)}
    assert _balanced_accuracy(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 0, 0])) == 0.5

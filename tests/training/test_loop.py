"""The training loop (eegcrp.training.loop): normalisation, early stopping, monitors."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from eegcrp.config import ModelConfig
from eegcrp.models import build_model
from eegcrp.training import normalize_windows, train_model
from tests.helpers import TRAIN_SFREQ as SFREQ
from tests.helpers import tconfig


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


def test_monitor_roc_auc_and_min_epochs(dataset):
    x, y, groups = dataset.get_data()
    x = normalize_windows(x)
    train, val = np.isin(groups, ["01", "02", "03"]), groups == "04"
    torch.manual_seed(0)
    model = build_model(None, 4, 128, 2, SFREQ)
    cfg = tconfig(max_epochs=10, patience=10, monitor="val_roc_auc", min_epochs=4)
    hist = train_model(model, x[train], y[train], x[val], y[val], config=cfg,
                       rng=np.random.default_rng(0), device="cpu")
    auc = np.array(hist["val_roc_auc"])
    best = hist["best_epoch"] - 1
    assert hist["best_epoch"] >= 4  # no epoch before min_epochs is picked
    assert auc[best] == auc[3:].max()
    model.eval()
    with torch.no_grad():
        proba = torch.softmax(model(torch.as_tensor(x[val])).double(), 1)[:, 1].numpy()
    assert roc_auc_score(y[val], proba) == pytest.approx(auc[best], abs=1e-9)
    # without early stopping every epoch is trained and the last weights are kept
    torch.manual_seed(0)
    hist = train_model(build_model(None, 4, 128, 2, SFREQ), x[train], y[train], x[val],
                       y[val], config=cfg.model_copy(update={"patience": 1}),
                       rng=np.random.default_rng(0), device="cpu", early_stopping=False)
    assert hist["epochs_trained"] == 10 and hist["best_epoch"] == 10
    assert len(hist["val_roc_auc"]) == 10


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


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc tunables")
def test_the_command_line_tunes_malloc_once_for_itself_and_its_workers():
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES",
                                                            "MALLOC_MMAP_THRESHOLD_",
                                                            "MALLOC_TRIM_THRESHOLD_")}
    code = ("import os, eegcrp.cli as c, eegcrp.training.loop as L; "
            "print(L._malloc_tuned); "
            "rc = c.main(['prepare', '/nonexistent.yaml', '-q']); "
            "print(L._malloc_tuned, os.environ.get('MALLOC_MMAP_THRESHOLD_'), rc)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    # importing the library (and train_model) tunes nothing; the command does, and
    # exports the thresholds for the workers it starts (a bad config still exits 2)
    assert out == ["None", "True", str(32 << 20), "2"]


def test_balanced_accuracy_ties_compare_equal():
    # equal balanced accuracies from different per-class splits must tie exactly, or the
    # val_accuracy monitor skips its tie-break on the loss (float32 gave 0.8250000477 vs
    # 0.8249999881 for 99 + 99 and 100 + 98 of 120 + 120)
    from eegcrp.training.loop import _balanced_accuracy

    y = torch.tensor([0] * 120 + [1] * 120)

    def pred(k0: int, k1: int) -> torch.Tensor:
        return torch.tensor([0] * k0 + [1] * (120 - k0) + [1] * k1 + [0] * (120 - k1))

    for total in range(2, 239):
        splits = [(k, total - k) for k in range(max(0, total - 120), min(120, total) + 1)]
        values = {_balanced_accuracy(y, pred(*s)) for s in splits}
        assert values == {round(total / 240, 12)}
    assert _balanced_accuracy(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 0, 0])) == 0.5

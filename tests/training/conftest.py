"""Shared helpers of the training tests: a synthetic dataset with a learnable signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from eegcrp.config import ModelConfig, TrainingConfig
from eegcrp.data.base import EEGDataset, make_epochs
from eegcrp.training import LOSOTrainer

SFREQ = 128.0
RESULT_COLUMNS = ["repetition", "test_subject", "accuracy", "balanced_accuracy", "f1_macro",
                  "roc_auc", "n_train", "n_val", "n_test", "epochs_trained", "best_epoch",
                  "seed"]



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
                monitor="val_loss", min_epochs=1, n_jobs=1,
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
    return LOSOTrainer(ModelConfig(), tconfig()).fit(dataset, out, identity="id-abc",
                                                     progress=False,
                                                     extra_meta={"preprocessing_key": "prep"})


def _results(trainer: LOSOTrainer) -> pd.DataFrame:
    return trainer.metrics_[RESULT_COLUMNS]


# --------------------------------------------------------------------------- splits

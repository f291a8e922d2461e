"""Helpers shared by the tests (fixtures stay in the conftest files).

Small synthetic datasets and studies, random EEGNets calibrated like trained ones, writers
of test files in real formats, and the command line run as a user runs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch
import yaml
from torch import nn

from eegcrp.cli import main
from eegcrp.config import ModelConfig, TrainingConfig
from eegcrp.data.base import EEGDataset, make_epochs
from eegcrp.models import build_model

# --------------------------------------------------------------------------- real data
DATA_ROOT = Path(os.environ.get("EEGCRP_DATA", "../shared/data"))


def real_folder(name: str) -> Path:
    """One real dataset folder, or skip."""
    path = DATA_ROOT / name
    if not path.is_dir():
        pytest.skip(f"{path} not found (set EEGCRP_DATA)")
    return path


# --------------------------------------------------------------------------- datasets
def synthetic_dataset(
    n_subjects: int = 3,
    n_trials: int = 8,
    ch_names: tuple[str, ...] = ("C3", "Cz", "C4", "Pz"),
    sfreq: float = 128.0,
    n_times: int = 384,
    seed: int = 0,
) -> EEGDataset:
    """Random two-class trials for tests that need an EEGDataset but no real data."""
    rng = np.random.default_rng(seed)
    epochs = {}
    for k in range(n_subjects):
        data = rng.standard_normal((n_trials, len(ch_names), n_times)) * 1e-5
        labels = ["a" if i % 2 == 0 else "b" for i in range(n_trials)]
        sid = f"s{k:02d}"
        epochs[sid] = make_epochs(data, ch_names=ch_names, sfreq=sfreq, labels=labels,
                                  event_id={"a": 1, "b": 2}, subject=sid)
    return EEGDataset("synthetic", epochs, "motor_imagery", 50.0)


TRAIN_SFREQ = 128.0
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
    t = np.arange(n_times) / TRAIN_SFREQ
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
            gain * 1e-5 * x, ch_names=[f"E{i}" for i in range(n_channels)], sfreq=TRAIN_SFREQ,
            labels=[names[k] for k in labels], event_id=event_id, subject=subject,
            montage=None,
        )
    return EEGDataset(name="synthetic", epochs=epochs, task="motor_imagery")


def tconfig(**kw) -> TrainingConfig:
    base = dict(repetitions=1, max_epochs=15, batch_size=16, learning_rate=1e-2, patience=5,
                monitor="val_loss", min_epochs=1, n_jobs=1,
                validation_subjects=1, threads=1, seed=7)
    return TrainingConfig(**{**base, **kw})


def result_columns(trainer: Any) -> pd.DataFrame:
    """The columns of a LOSO run's metrics that decide its results."""
    return trainer.metrics_[RESULT_COLUMNS]


# --------------------------------------------------------------------------- tiny studies
def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def tiny_config(root: Path, **sections):
    """A study small enough for tests: 3 simulated subjects, 19 channels, 2-s windows at
    128 Hz, one repetition of 2 epochs. ``sections`` are merged into the defaults."""
    from eegcrp.config import load_config

    base = {
        "name": "tiny", "output_dir": str(root),
        "dataset": {"kind": "simulated", "n_subjects": 3, "n_trials": 8,
                    "channels": "10-20_19", "sfreq": 128, "trial_duration": 2.0,
                    "effect_window": [0.25, 1.75]},
        "preprocessing": {"window": 2.0, "step": 1.0, "h_freq": 40},
        "model": {"kernel_length": 16},
        "training": {"repetitions": 1, "max_epochs": 2, "threads": 1, "batch_size": 16,
                     "n_jobs": 1},
        "explain": {"batch_size": 32, "device": "cpu", "n_jobs": 1},
        "evaluate": {"n_jobs": 1, "max_windows": 8, "max_steps": 4, "n_random": 1,
                     "shuffled_label_folds": 0},
    }
    return load_config(_merge(base, sections))


#: Simulated 15-channel 10-20 montage of the planted-effect and planted-confound studies.
PLANTED_CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "C3", "Cz", "C4", "P3", "Pz",
                    "P4", "O1", "O2"]
#: Their dataset settings: no neural effect but blinks 11x as frequent in left-hand trials;
#: a planted mu/beta (8-30 Hz) effect without confound.
PLANTED = {
    "confound": {"effect_size": 0.0, "confound": {"artifact": "blink", "class": "left_hand",
                                                  "strength": 10.0}},
    "effect": {"effect_size": 2.0, "snr": 1.2},
}


def run_stages(config, *names: str, **kwargs) -> None:
    """Run the named stages (the shared stage contract included) without progress bars."""
    from eegcrp.stages import run_stage

    for name in names:
        run_stage(name, config, progress=False, **kwargs)


def copy_study(config, root: Path):
    """The study of ``config`` copied to ``root`` (cache included), with its config there."""
    import shutil

    shutil.copytree(config.output_dir, root)
    return config.model_copy(update={"output_dir": root,
                                     "cache_dir": config.resolved_cache_dir()})


# --------------------------------------------------------------------------- models
C, T = 4, 128


def make_model(n_channels: int = C, n_times: int = T, seed: int = 0, bias: bool = True,
               bn_eps: float | None = None, variant: str = "eegnet") -> nn.Sequential:
    """A random EEGNet whose batch norms are calibrated on random data like a trained one.

    ``bias=False`` gives a bias-free network (batch-norm shifts, running means and the
    classifier bias zero); otherwise shifts and the classifier bias are random.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(ModelConfig(variant=variant), n_channels, n_times, 2, 128.0)
    x = torch.randn(64, n_channels, n_times, generator=gen)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = None
                mod.reset_running_stats()
        model.train()
        model(x)
        model.eval()
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                if bn_eps is not None:
                    mod.eps = bn_eps
                mod.weight.uniform_(0.5, 1.5, generator=gen)
                if bias:
                    mod.bias.normal_(0.0, 0.3, generator=gen)
                else:
                    mod.running_mean.zero_()
                    mod.bias.zero_()
        if model.classifier.bias is not None:
            if bias:
                model.classifier.bias.normal_(0.0, 0.5, generator=gen)
            else:
                model.classifier.bias.zero_()
    return model


def windows(n: int = 8, n_channels: int = C, n_times: int = T, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, n_channels, n_times, generator=torch.Generator().manual_seed(seed))


def rel_close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    """|a - b| <= tol * max|b| elementwise (relative to the array's scale)."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return bool((a - b).abs().max() <= tol * b.abs().max())


# --------------------------------------------------------------------------- the CLI
def write_yaml(config, path):
    """The config as a YAML file (what a user passes to the CLI)."""
    data = config.model_dump(mode="json")
    path.write_text(yaml.safe_dump(data))
    return str(path)


def run_cli(capsys, *argv):
    rc = main([*argv, "-q"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def files_in(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- KU Leuven files
KUL_SFREQ = 128
KUL_SECONDS = 20


def kul_trial(rng: np.random.Generator, ear: Any, n_samples: int = KUL_SECONDS * KUL_SFREQ) -> dict:
    return {
        "RawData": {"EegData": rng.normal(0.0, 20.0, (n_samples, 64)), "Channels": np.arange(64)},
        "FileHeader": {"SampleRate": KUL_SFREQ},
        "attended_ear": ear,
        "attended_track": 1,
        "condition": "hrtf",
    }


def write_kul_file(path: Path, trials: list[dict]) -> Path:
    cell = np.empty(len(trials), dtype=object)
    for i, trial in enumerate(trials):
        cell[i] = trial
    scipy.io.savemat(path, {"trials": cell})
    return path


def write_kul_subject(folder: Path, num: int, ears: str = "LRL", **kwargs: Any) -> Path:
    rng = np.random.default_rng(num)
    return write_kul_file(folder / f"S{num}.mat", [kul_trial(rng, ear, **kwargs) for ear in ears])

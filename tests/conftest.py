"""Shared fixtures: the real-data folder and small synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from eegcrp.data.base import EEGDataset, make_epochs

DATA_ROOT = Path(os.environ.get("EEGCRP_DATA", "../shared/data"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real recordings; tests needing them are skipped where they are absent."""
    if not DATA_ROOT.is_dir():
        pytest.skip(f"real data not found at {DATA_ROOT} (set EEGCRP_DATA)")
    return DATA_ROOT


def real_folder(name: str) -> Path:
    """One real dataset folder, or skip."""
    path = DATA_ROOT / name
    if not path.is_dir():
        pytest.skip(f"{path} not found (set EEGCRP_DATA)")
    return path


@pytest.fixture
def one_torch_thread():
    """Tiny models: one torch thread is fastest and immune to a busy machine."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test use a cache from the environment."""
    monkeypatch.delenv("EEGCRP_CACHE", raising=False)


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


def run_stages(config, *names: str, **kwargs) -> None:
    """Run the named stages (the shared stage contract included) without progress bars."""
    from eegcrp.stages import run_stage

    for name in names:
        run_stage(name, config, progress=False, **kwargs)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """prepare, train and explain (with short-time relevance) of :func:`tiny_config`, once.

    Read-only for tests: copy the folder (``shutil.copytree``) before changing anything."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = tiny_config(tmp_path_factory.mktemp("tiny"), explain={"short_time": True})
        run_stages(config, "prepare", "train", "explain")
    finally:
        torch.set_num_threads(old)
    return config


def copy_study(config, root: Path):
    """The study of ``config`` copied to ``root`` (cache included), with its config there."""
    import shutil

    shutil.copytree(config.output_dir, root)
    return config.model_copy(update={"output_dir": root,
                                     "cache_dir": config.resolved_cache_dir()})

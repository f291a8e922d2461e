"""Shared fixtures: the real-data folder and small synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from tests.helpers import DATA_ROOT, run_stages, tiny_config


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real recordings; tests needing them are skipped where they are absent."""
    if not DATA_ROOT.is_dir():
        pytest.skip(f"real data not found at {DATA_ROOT} (set EEGCRP_DATA)")
    return DATA_ROOT


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


# --------------------------------------------------------------------------- tiny studies
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


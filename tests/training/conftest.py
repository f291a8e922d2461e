"""Shared helpers of the training tests: a synthetic dataset with a learnable signal."""

from __future__ import annotations

import pytest
import torch

from eegcrp.config import ModelConfig
from eegcrp.data.base import EEGDataset
from eegcrp.training import LOSOTrainer
from tests.helpers import make_dataset, tconfig


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


# --------------------------------------------------------------------------- splits

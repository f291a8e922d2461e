"""A small simulated recording for ICA tests (19 channels, 50 s at 128 Hz)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sim_raw(tmp_path_factory):
    """One simulated subject's cached continuous data (blinks included) and its windows."""
    from eegcrp.preprocessing import prepare
    from eegcrp.preprocessing.cache import load_continuous
    from tests.helpers import tiny_config

    config = tiny_config(tmp_path_factory.mktemp("simraw"), dataset={
        "n_subjects": 2, "subjects": [1, 2], "n_trials": 20, "blink_rate": 0.5})
    dataset = prepare(config, progress=False)
    subject = dataset.subjects[0]
    return load_continuous(dataset, subject), dataset[subject]

"""The explain stage: aligned models in sensor space, parallel folds equal serial ones."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.store import load_relevance, open_relevance
from tests.helpers import run_stages, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_aligned_models_are_explained_in_sensor_space(tmp_path):
    config = tiny_config(tmp_path, training={"alignment": "euclidean"},
                         explain={"composite": "EpsilonPlus"})
    run_stages(config, "prepare", "train", "explain")
    run = open_relevance(config.output_dir)
    for fold in run.folds:
        assert fold.attrs["input_space"] == "sensor"
        with fold.open() as h5:
            heat_total = h5["pairs/heatmap_total"][()]
            heat = h5["pairs/heatmaps"][()]
            spec = h5["pairs/spectral_relevance"][()]
        # the virtual layer conserves: the stored sensor-space heatmaps keep each total
        assert np.allclose(heat.sum(axis=(1, 2)), heat_total, rtol=1e-4,
                           atol=1e-6 * np.abs(heat).sum(axis=(1, 2)).max())
        assert np.allclose(spec.sum(axis=(1, 2)), heat_total, rtol=1e-3,
                           atol=1e-5 * np.abs(heat).sum(axis=(1, 2)).max())
    # the layer -> input conservation is measured on the sensor-space heatmaps
    assert np.isfinite(run.conservation().conservation_lower).all()


def test_parallel_folds_equal_serial_folds(tmp_path):
    serial = tiny_config(tmp_path / "serial", explain={"n_jobs": 1})
    run_stages(serial, "prepare", "train", "explain")
    parallel = tiny_config(tmp_path / "parallel", explain={"n_jobs": 2},
                           cache_dir=str(serial.resolved_cache_dir()))
    run_stages(parallel, "prepare", "train", "explain")
    a = load_relevance(serial.output_dir)
    b = load_relevance(parallel.output_dir)
    for name in ("total_relevance", "relevance_mean", "spectral_relevance_sum"):
        np.testing.assert_allclose(a[name].values, b[name].values, atol=1e-6, equal_nan=True)

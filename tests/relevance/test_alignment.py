"""The alignment virtual layer (eegcrp.relevance.alignment): exact conservation to the sensors."""

from __future__ import annotations

import numpy as np
import torch

from eegcrp.relevance.alignment import SensorLayer, sensor_relevance
from eegcrp.relevance.crp import ConceptExplainer
from eegcrp.training import normalize_windows
from eegcrp.training.alignment import apply_maps, subject_maps
from tests.helpers import make_model


def _aligned(seed=0, n=6, c=4, t=128):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, t)) * 1e-5
    x -= x.mean(axis=1, keepdims=True)  # CAR, as the model's input is
    groups = np.array(["a"] * (n // 2) + ["b"] * (n - n // 2))
    maps = subject_maps(x, groups, "euclidean")
    aligned = apply_maps(x, groups, maps).astype(np.float64)
    z = normalize_windows(aligned)
    scale = aligned.std(axis=(1, 2))
    w = np.stack([maps[g] for g in groups])
    return x, z, w, scale, groups, maps


def test_layer_reproduces_the_model_input_and_conserves_relevance_per_window():
    x, z, w, scale, _, _ = _aligned()
    # the layer's linear map A x equals the model's input
    wx = np.einsum("ncd,ndt->nct", w, x)
    az = (wx - wx.mean(axis=(1, 2), keepdims=True)) / scale[:, None, None]
    assert np.allclose(az, z, atol=1e-5)
    rng = np.random.default_rng(1)
    relevance = rng.standard_normal(z.shape)
    r_x = sensor_relevance(x, z.astype(np.float64), relevance, w, scale)
    got, want = r_x.sum(axis=(1, 2)), relevance.sum(axis=(1, 2))
    assert np.allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(relevance).sum(axis=(1, 2)).max())


def test_real_crp_heatmaps_map_to_sensors_with_the_same_total():
    x, z, _, scale, groups, maps = _aligned(n=4)
    model = make_model(seed=3)
    ex = ConceptExplainer(model, composite="EpsilonPlus", dtype=torch.float64)
    att = ex.attribute(z, [0, 1, 0, 1], [2, 5, 7, 11])
    heat = att.heatmap.numpy()
    order = sorted(maps)
    layer = SensorLayer(x, np.stack([maps[s] for s in order]),
                        np.array([order.index(g) for g in groups]), scale)
    xs, sensor = layer.to_sensor(np.arange(4), z.astype(np.float64), heat)
    assert np.array_equal(xs, x)
    rel = np.abs(sensor.sum(axis=(1, 2)) - heat.sum(axis=(1, 2))) / np.abs(heat).sum(axis=(1, 2))
    assert rel.max() < 1e-6
    assert not np.allclose(sensor, heat)  # the spatial map moves relevance between channels

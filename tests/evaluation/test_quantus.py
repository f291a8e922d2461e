"""Quantus (optional) on eegcrp's models: its region perturbation equals eegcrp's own engine
on the same model, windows and heatmaps; its parameter randomisation runs."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.evaluation import attribute, decision_score, perturbation_curves
from eegcrp.evaluation.perturbation import Domain
from tests.helpers import make_model

quantus = pytest.importorskip("quantus", reason="quantus is not installed (eegcrp[quality])")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

C, T, P = 4, 128, 4


def _patch_domain(n_channels: int, n_times: int, p: int) -> Domain:
    """Quantus' units: p x p blocks of (channel, time), removed by setting them to 0."""
    blocks = [(i, j) for i in range(0, n_channels, p) for j in range(0, n_times, p)]

    def relevance(x, heat):
        return np.stack([heat[:, i:i + p, j:j + p].sum((1, 2)) for i, j in blocks], 1)

    def remove(x, mask):
        out = x.copy()
        for k, (i, j) in enumerate(blocks):
            out[mask[:, k], i:i + p, j:j + p] = 0.0
        return out

    return Domain("patches", [f"{i}:{j}" for i, j in blocks], relevance, remove)


def test_region_perturbation_matches_eegcrp_perturbation():
    from eegcrp.evaluation.quantus_adapter import region_perturbation

    model = make_model(seed=5)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, C, T)).astype(np.float32)
    y = np.arange(6) % 2
    heat, _ = attribute(model, x, y, "lrp:EpsilonPlus", init="logit")
    steps = 12
    theirs = region_perturbation(model, x, y, heat, patch_size=P, steps=steps)
    dom = _patch_domain(C, T, P)
    ours = perturbation_curves(lambda xw: decision_score(model, xw, y, "logit"), x,
                               dom.relevance(x, heat), dom, np.arange(steps + 1),
                               {"morf": None})["morf"]
    np.testing.assert_allclose(theirs, ours[:, :1] - ours[:, 1:], rtol=1e-4, atol=1e-5)


def test_parameter_randomisation_runs_on_eegnet_and_similarity_falls():
    from eegcrp.evaluation.quantus_adapter import model_parameter_randomisation

    model = make_model(seed=6)
    x = np.random.default_rng(1).standard_normal((4, C, T)).astype(np.float32)
    scores = model_parameter_randomisation(model, x, np.arange(4) % 2)
    assert scores.pop("original") == pytest.approx(1.0)
    # one entry per re-drawn layer (convolutions, batch norms, classifier), each less similar
    assert {"model.classifier", "model.b2_conv2", "model.b1_conv1"} <= set(scores)
    assert max(scores.values()) < 0.9

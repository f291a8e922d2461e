"""Explanation-quality core (eegcrp.evaluation): attributions, perturbation, randomisation,
ground truth, each against a case whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from eegcrp.evaluation import (
    aopc,
    attribute,
    cascade_models,
    decision_score,
    make_domain,
    perturbation_curves,
    recovery_scores,
    similarity,
    steps_for,
)
from tests.helpers import make_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

C, T, SF = 4, 128, 128.0


class Linear(nn.Module):
    """score = sum(w * x): every attribution method must return w * x."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x * self.w).flatten(1).sum(1)
        return torch.stack([-s, s], dim=1)


def test_gradient_methods_on_a_linear_model_give_weight_times_input():
    rng = np.random.default_rng(0)
    w = torch.as_tensor(rng.standard_normal((C, T)), dtype=torch.float32)
    x = rng.standard_normal((5, C, T)).astype(np.float32)
    model = Linear(w)
    for method in ("gradient_x_input", "integrated_gradients"):
        heat, start = attribute(model, x, np.ones(5, int), method, init="logit")
        np.testing.assert_allclose(heat, x * w.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(heat.sum((1, 2)), start, rtol=1e-4)
    # contrast: s_1 - s_0 = 2 s, twice the logit's attribution
    heat, start = attribute(model, x, np.ones(5, int), "gradient_x_input", init="contrast")
    np.testing.assert_allclose(heat, 2 * x * w.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(decision_score(model, x, np.ones(5, int)), start, rtol=1e-5)


def test_lrp_attribution_of_eegnet_conserves_the_contrast():
    model = make_model(seed=2, bias=False)
    x = np.random.default_rng(1).standard_normal((6, C, T)).astype(np.float32)
    heat, start = attribute(model, x, np.arange(6) % 2, "lrp:Epsilon", init="contrast")
    assert heat.shape == (6, C, T)
    np.testing.assert_allclose(heat.sum((1, 2)), start, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(start, decision_score(model, x, np.arange(6) % 2), rtol=1e-4)


def _score_on_channel(channel: int):
    def score(x: np.ndarray) -> np.ndarray:
        return (x[:, channel] ** 2).mean(axis=1)
    return score


def test_morf_drops_fast_for_a_faithful_heatmap_and_lerf_slowly():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, C, T))
    score = _score_on_channel(2)
    heat = np.zeros_like(x)
    heat[:, 2] = x[:, 2] ** 2  # faithful: all relevance where the score lives
    heat[:, 0] = 0.01
    dom = make_domain("channels", ch_names=list("abcd"), sfreq=SF, n_times=T)
    steps = steps_for(dom.n_units, 10)
    assert list(steps) == [0, 1, 2, 3, 4]
    curves = perturbation_curves(score, x, dom.relevance(x, heat), dom, steps,
                                 {"morf": None, "lerf": None})
    # removing channel 2 first leaves only its mean, removing it last changes nothing before
    np.testing.assert_allclose(curves["morf"][:, 1], x[:, 2].mean(1) ** 2)
    np.testing.assert_allclose(curves["lerf"][:, 3], score(x))
    assert aopc(curves["morf"]).mean() > 0.9 * score(x).mean()
    assert aopc(curves["lerf"]).mean() < 0.3 * score(x).mean()
    # an unfaithful heatmap (relevance on the wrong channel) loses that gap
    wrong = np.zeros_like(x)
    wrong[:, 0] = 1.0
    bad = perturbation_curves(score, x, dom.relevance(x, wrong), dom, steps, {"morf": None})
    assert aopc(bad["morf"]).mean() < aopc(curves["morf"]).mean()


def test_band_and_time_domains_remove_what_they_name():
    t = np.arange(T) / SF
    x = np.stack([np.stack([np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 25 * t)] * C)])
    bands = {"alpha": (8.0, 13.0), "beta": (20.0, 30.0)}
    dom = make_domain("bands", ch_names=list("abcd"), sfreq=SF, n_times=T, bands=bands)
    no_alpha = dom.remove(x, np.array([[True, False]]))
    np.testing.assert_allclose(no_alpha[0, 0], np.sin(2 * np.pi * 25 * t), atol=1e-9)
    heat = x ** 2  # relevance ~ energy: both bands carry it, nothing else does
    rel = dom.relevance(x, heat)
    assert rel.shape == (1, 2) and np.all(rel > 0)
    np.testing.assert_allclose(rel.sum(), heat.sum(), rtol=1e-6)
    seg = make_domain("time", ch_names=list("abcd"), sfreq=SF, n_times=T, n_segments=4)
    mask = np.array([[False, True, False, False]])
    out = seg.remove(x, mask)
    assert np.allclose(out[0, :, 32:64], x[0].mean(axis=1, keepdims=True))
    assert np.array_equal(out[0, :, :32], x[0, :, :32])
    assert seg.relevance(x, heat).shape == (1, 4)
    neigh = make_domain("channels", ch_names=list("abcd"), sfreq=SF, n_times=T,
                        channel_removal="neighbours",
                        positions=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5.0]]))
    rem = neigh.remove(x * np.arange(1, 5)[None, :, None], np.array([[True, False, False,
                                                                       False]]))
    assert np.allclose(rem[0, 0], x[0, 0] * np.mean([2, 3, 4]))
    with pytest.raises(ValueError, match="needs 3-D positions"):
        make_domain("channels", ch_names=list("abcd"), sfreq=SF, n_times=T,
                    channel_removal="neighbours")


def test_cascade_redraws_layers_top_down_and_similarity_is_rank_based():
    model = make_model(seed=4)
    steps = cascade_models(model, seed=0)
    assert [name for name, _ in steps] == ["classifier", "b2_conv2", "b2_conv1", "b1_conv2",
                                           "b1_conv1"]
    _, after_two = steps[1]
    assert not torch.equal(after_two.classifier.weight, model.classifier.weight)
    assert not torch.equal(after_two.b2_conv2.weight, model.b2_conv2.weight)
    assert torch.equal(after_two.b2_conv1.weight, model.b2_conv1.weight)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, C, T))
    heat = rng.standard_normal((3, C, T))
    bands = {"alpha": (8.0, 13.0), "beta": (13.0, 30.0)}
    same = similarity(heat, heat, x, SF, bands)
    assert same["heatmap_spearman"] == pytest.approx(1.0)
    assert similarity(heat, 2 * heat + 1, x, SF, bands)["heatmap_spearman"] == pytest.approx(1)
    other = similarity(heat, rng.standard_normal((3, C, T)), x, SF, bands)
    assert abs(other["heatmap_spearman"]) < 0.2


def test_recovery_scores_on_a_perfect_and_a_blind_heatmap():
    truth = {"contrasts": [{"effects": [{"channels": ["C3"], "band": [8.0, 12.0]}],
                            "time_window": [0.5, 1.5]}],
             "time_window": [0.5, 1.5],
             "artifacts": [{"name": "blink", "channels": ["Fp1"], "band": [0.5, 4.0]}]}
    names = ["Fp1", "C3", "Cz", "C4"]
    t = np.arange(T) / SF
    x = np.zeros((2, 4, T))
    x[:, 1] = np.sin(2 * np.pi * 10 * t)
    heat = np.zeros_like(x)
    heat[:, 1] = np.where((t >= 0.5) & (t < 1.5), x[:, 1] ** 2, 0)
    scores = recovery_scores(heat, x, np.zeros(2), names, SF, truth)
    assert scores["channel_share"] == pytest.approx(1.0)
    assert scores["channel_chance"] == 0.25 and scores["channel_precision_at_k"] == 1.0
    assert scores["channel_auc"] == 1.0 and scores["time_share"] == pytest.approx(1.0)
    # all relevance sits in the 10 Hz bin; the band's other bins tie with the empty ones
    assert scores["band_share"] > 0.9 and scores["bin_auc"] > 0.6
    assert scores["blink_channel_share"] == 0.0
    blind = recovery_scores(np.ones_like(x), np.ones_like(x) + 0 * x, np.zeros(2), names, SF,
                            truth)
    assert blind["channel_share"] == pytest.approx(blind["channel_chance"])

"""Agreement with the reference implementation: zennit-crp 0.6.0's CondAttribution.

zennit-crp is installed by the test extra without its dependencies (its metadata asks for
torch >= 1.7 and torchvision; ``crp.attribution`` and ``crp.concepts`` import neither
torchvision nor anything past torch 1.x APIs). Two of its defaults do not fit EEG and are
overridden here: ``exclude_parallel=True`` records the concept layer's relevance twice on
torch 2.13 (exactly 2x; its heatmaps stay right), and its heatmap sums the input's second
axis, which for EEG windows is the channel axis.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from eegcrp.relevance.crp import ConceptExplainer
from eegcrp.relevance.rules import build_composite
from tests.helpers import make_model, windows

attribution = pytest.importorskip("crp.attribution", reason="zennit-crp is not installed")
concepts = pytest.importorskip("crp.concepts")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ChannelsKept(attribution.CondAttribution):
    """CondAttribution whose heatmap keeps the EEG channel axis (no sum over axis 1)."""

    def heatmap_modifier(self, data, on_device=None):
        heatmap = data.grad.detach()
        return heatmap.to(on_device) if on_device else heatmap


@pytest.mark.parametrize("composite", ["EpsilonPlus", "EpsilonAlpha2Beta1"])
def test_filter_relevance_and_conditional_heatmaps_equal_zennit_crp(composite):
    model = make_model(seed=21)
    x = windows(4)
    ours = ConceptExplainer(model, composite=composite, dtype=torch.float32)
    layer = ours.layer_relevance(x)  # (classes, n, filters, 1, T')
    ref_model = copy.deepcopy(model).eval()
    attr = ChannelsKept(ref_model, no_param_grad=True)
    cc = concepts.ChannelConcept()
    for c in (0, 1):
        for f in (0, 5, 15):
            conditions = [{"b2_conv2": [f], "y": [c]}] * len(x)
            result = attr(x.clone().requires_grad_(True), conditions,
                          build_composite(composite), record_layer=["b2_conv2"],
                          exclude_parallel=False)
            ref_rel = cc.attribute(result.relevances["b2_conv2"], abs_norm=False)[:, f]
            ours_rel = layer.relevance[c, :, f].flatten(1).sum(1)
            assert torch.allclose(ours_rel, ref_rel, rtol=1e-5, atol=1e-7), (c, f)
            heat = ours.attribute(x, [c] * len(x), [f] * len(x)).heatmap
            assert heat.shape == result.heatmap.shape == x.shape
            scale = float(heat.abs().max())
            assert torch.allclose(heat, result.heatmap, rtol=0, atol=1e-5 * scale), (c, f)
    # with its default exclude_parallel=True, zennit-crp 0.6.0 on torch 2.13 records the
    # concept layer's relevance twice while its heatmap is unchanged: the reason for the
    # override above
    doubled = attr(x.clone().requires_grad_(True), [{"b2_conv2": [3], "y": [1]}] * len(x),
                   build_composite(composite), record_layer=["b2_conv2"])
    ratio = (cc.attribute(doubled.relevances["b2_conv2"], abs_norm=False)[:, 3]
             / layer.relevance[1, :, 3].flatten(1).sum(1))
    np.testing.assert_allclose(ratio.numpy(), 2.0, rtol=1e-4)
    heat = ours.attribute(x, [1] * len(x), [3] * len(x)).heatmap
    assert torch.allclose(doubled.heatmap, heat, rtol=0, atol=1e-5 * float(heat.abs().max()))

"""The CRP core (eegcrp.relevance.crp, .rules): conservation, masking, batching, hooks,
relevance start, selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from eegcrp.config import ExplainConfig
from eegcrp.config.stages import EEGNET_CONV_LAYERS
from eegcrp.errors import ExplainError
from eegcrp.relevance.crp import ConceptExplainer, initial_relevance, select_samples
from eegcrp.relevance.rules import COMPOSITES, ExactMergeBatchNorm, build_composite, without_bias
from tests.helpers import C, T, make_model, rel_close, windows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- conservation
@pytest.mark.parametrize("first", [None, "alpha2beta1", "zplus", "wsquare", "flat"])
@pytest.mark.parametrize("seed", [0, 1])
def test_input_relevance_sums_to_logit_on_bias_free_model(first, seed):
    # Epsilon rules (and alpha-beta & co. on the first conv) conserve relevance exactly up to
    # their stabilisers. float64 and a tiny epsilon isolate the implementation (merging,
    # masking, Pass/Norm layers) from the stabiliser. Relative to the logits' scale: random
    # models have some logits near zero.
    model = make_model(seed=seed, bias=False)
    x = windows()
    ex = ConceptExplainer(model, composite="Epsilon", first_layer_rule=first,
                          dtype=torch.float64, epsilon=1e-12)
    for c in (0, 1):
        att = ex.attribute(x, c)
        logit = att.logits[:, c]
        err = (att.heatmap.sum((1, 2)) - logit).abs()
        assert err.max() <= 1e-4 * logit.abs().mean(), (err / logit.abs().mean()).max()


def test_zeroed_biases_conserve_and_kept_biases_leak():
    model = make_model(seed=0, bias=True)
    x = windows()
    errors = {}
    for zero_bias in (True, False):
        ex = ConceptExplainer(model, composite="Epsilon", zero_bias=zero_bias,
                              dtype=torch.float64, epsilon=1e-12)
        att = ex.attribute(x, 1)
        logit = att.logits[:, 1]
        err = (att.heatmap.sum((1, 2)) - logit).abs().max() / logit.abs().mean()
        errors[zero_bias] = float(err)
    assert errors[True] <= 1e-4
    assert errors[False] > 1e-2  # merged batch-norm shifts and the classifier bias absorb it


@pytest.mark.parametrize("composite", ["EpsilonAlpha2Beta1", "EpsilonPlus", "EpsilonGammaBox"])
def test_layer_relevance_conserves_above_concept_layer(composite):
    # logit -> b2_conv2: merged (exact identity) batch norm, ELU (Pass), average pool (Norm),
    # classifier (Epsilon): conserved for every composite once biases are left out.
    model = make_model(seed=2, bias=True)
    x = windows(16)
    ex = ConceptExplainer(model, composite=composite, input_bounds=(-5.0, 5.0),
                          dtype=torch.float64, epsilon=1e-12)
    lr = ex.layer_relevance(x)
    per_filter = lr.relevance.flatten(3).sum(-1)  # (classes, n, filters)
    total = lr.relevance.flatten(2).sum(-1)
    # the filter relevances at the layer sum to the layer's total ...
    assert rel_close(per_filter.sum(-1), total, 1e-12)
    # ... which is the explained logit
    assert rel_close(total, lr.logits.T, 1e-8)
    # float32 and zennit's stabilisers: the bias-free part of a logit can be small, which
    # magnifies the stabilisers' share
    lr32 = ConceptExplainer(model, composite=composite,
                            input_bounds=(-5.0, 5.0)).layer_relevance(x)
    assert rel_close(lr32.relevance.flatten(2).sum(-1), lr32.logits.T, 1e-3)
    # without zeroing, the classifier bias takes its share
    leaky = ConceptExplainer(model, composite=composite, zero_bias=False,
                             input_bounds=(-5.0, 5.0)).layer_relevance(x)
    assert not rel_close(leaky.relevance.flatten(2).sum(-1), leaky.logits.T, 1e-2)


def test_canonized_logits_equal_model_and_model_is_untouched():
    model = make_model(seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = windows()
    ex = ConceptExplainer(model)
    logits, act = ex.predict(x)
    with torch.no_grad():
        assert torch.allclose(logits, model(x), atol=1e-5)
    assert torch.allclose(ex.layer_relevance(x).logits, logits, atol=1e-4)
    assert act.shape == (len(x), 16, 1, T // 4)
    assert not x.requires_grad
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_exact_merge_leaves_identity_and_reverts():
    model = make_model(seed=4)
    bn = model.b1_bn1
    saved = {k: getattr(bn, k).clone() for k in ("weight", "bias", "running_mean", "running_var")}
    composite = build_composite("EpsilonPlus")
    composite.register(model)
    z = torch.randn(3, 8, C, T)
    assert torch.equal(bn(z), z) or torch.allclose(bn(z), z, atol=1e-7, rtol=0)
    assert any(isinstance(h, ExactMergeBatchNorm) for h in composite.handles)
    composite.remove()
    for key, value in saved.items():
        assert torch.equal(getattr(bn, key), value)
    assert model.b1_conv1.bias is None


def test_without_bias_zeroes_only_bias():
    from zennit.rules import AlphaBeta, Pass

    rule = without_bias(AlphaBeta())
    w = torch.tensor([1.0, -2.0])
    assert all(torch.equal(m(w, "bias"), torch.zeros(2)) for m in rule.param_modifiers)
    assert torch.equal(rule.param_modifiers[0](w, "weight"), w.clamp(min=0))
    passthrough = Pass()
    assert without_bias(passthrough) is passthrough


# --------------------------------------------------------------------------- masking
@pytest.mark.parametrize("layer", ["b2_conv2", "b2_conv1", "b1_conv2", "b1_conv1"])
def test_conditional_heatmaps_sum_to_unconditional(layer):
    model = make_model(seed=5)
    x = windows(3)
    ex = ConceptExplainer(model, layer=layer, dtype=torch.float64)
    n_f = ex.n_filters
    plain = ex.attribute(x, 1)
    rows = x.repeat_interleave(n_f, 0)
    filters = torch.arange(n_f).repeat(len(x))
    cond = ex.attribute(rows, 1, filters)
    summed = cond.heatmap.view(len(x), n_f, C, T).sum(1)
    assert rel_close(summed, plain.heatmap, 1e-10)
    # the masked layer relevance keeps only the row's filter
    lr = cond.layer_relevance.view(len(x), n_f, n_f, -1)
    off = lr.clone()
    off[:, torch.arange(n_f), torch.arange(n_f)] = 0
    assert off.abs().max() == 0
    assert rel_close(lr.sum(1), plain.layer_relevance.flatten(2), 1e-10)


def _reference_crp(model: nn.Module, x: torch.Tensor, cls: int, filt: int) -> torch.Tensor:
    """CRP of one window and one condition, from the definition, with zennit's own composite.

    LRP (zennit's EpsilonAlpha2Beta1 with its SequentialMergeBatchNorm) from the logit of
    ``cls`` (others zero); at b2_conv2 the relevance of all filters but ``filt`` is zeroed.
    """
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonAlpha2Beta1

    composite = EpsilonAlpha2Beta1(canonizers=[SequentialMergeBatchNorm()])

    def mask_filter(module, args, output):
        def keep_one(grad):
            kept = torch.zeros_like(grad)
            kept[:, filt] = grad[:, filt]
            return kept

        output.register_hook(keep_one)

    handle = model.b2_conv2.register_forward_hook(mask_filter)
    try:
        with composite.context(model) as canonized:
            xi = x[None].clone().requires_grad_(True)
            out = canonized(xi)
            init = torch.zeros_like(out)
            init[0, cls] = out[0, cls]
            (grad,) = torch.autograd.grad(out, xi, init)
    finally:
        handle.remove()
    return grad[0]


def test_batched_conditions_equal_per_condition_reference():
    # bn eps 0: zennit's merge then leaves an exact identity too, so both sides use the same
    # network; zero_bias=False matches zennit's rules unchanged.
    model = make_model(seed=6, bn_eps=0.0)
    x = windows(5)
    ex = ConceptExplainer(model, zero_bias=False)
    rng = np.random.default_rng(0)
    samples = rng.integers(0, len(x), 12)
    classes = rng.integers(0, 2, 12)
    filters = rng.integers(0, 16, 12)
    batched = ex.attribute(x[samples], classes, filters).heatmap
    ref_model = make_model(seed=6, bn_eps=0.0)
    for row, (i, c, f) in enumerate(zip(samples, classes, filters, strict=True)):
        ref = _reference_crp(ref_model, x[i], int(c), int(f))
        assert rel_close(batched[row], ref, 1e-5), row


def test_first_layer_rule_and_composite_names():
    model = make_model(seed=7)
    x = windows(2)
    plus_flat = ConceptExplainer(model, composite="EpsilonPlusFlat").attribute(x, 0).heatmap
    plus_with_flat = ConceptExplainer(model, composite="EpsilonPlus",
                                      first_layer_rule="flat").attribute(x, 0).heatmap
    plus = ConceptExplainer(model, composite="EpsilonPlus").attribute(x, 0).heatmap
    assert torch.allclose(plus_flat, plus_with_flat)
    assert not torch.allclose(plus_flat, plus)
    with pytest.raises(ValueError, match="input_bounds"):
        ConceptExplainer(model, composite="EpsilonGammaBox")
    with pytest.raises(ValueError, match="unknown composite"):
        build_composite("LRP")
    with pytest.raises(ExplainError, match="not a conv layer"):
        ConceptExplainer(model, layer="b2_bn")
    assert set(ExplainConfig.model_fields["composite"].annotation.__args__) <= set(COMPOSITES)


def test_thesis_variant_is_explained_without_its_renorm_hook():
    model = make_model(seed=8, variant="thesis")
    ex = ConceptExplainer(model, dtype=torch.float64)
    x = windows(2)
    from eegcrp.models import ThesisRenorm

    for net in (ex.model, ex.lrp_model):
        hooks = net.b1_conv2._forward_pre_hooks.values()
        assert not any(isinstance(h, ThesisRenorm) for h in hooks)
    assert any(isinstance(h, ThesisRenorm) for h in model.b1_conv2._forward_pre_hooks.values())
    lr = ex.layer_relevance(x)
    assert rel_close(lr.relevance.flatten(2).sum(-1), lr.logits.T, 1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = make_model(seed=9)
    x = windows(4)
    cpu = ConceptExplainer(model, device="cpu").attribute(x, [0, 1, 0, 1], [0, 3, 5, 15])
    gpu = ConceptExplainer(model, device="cuda").attribute(x, [0, 1, 0, 1], [0, 3, 5, 15])
    assert gpu.heatmap.device.type == "cuda"
    assert rel_close(gpu.heatmap.cpu(), cpu.heatmap, 1e-4)


# --------------------------------------------------------------------------- selection
def test_select_share_smallest_set():
    r = np.array([0.1, -0.5, 0.2, 0.0, 0.2])  # |r| total 1.0
    assert list(select_samples(r, share=0.2)) == [1]
    assert list(select_samples(r, share=0.5)) == [1]
    assert list(select_samples(r, share=0.6)) == [1, 2]  # tie 2/4: lower index first
    assert list(select_samples(r, share=0.75)) == [1, 2, 4]
    assert list(select_samples(r, share=1.0)) == [1, 2, 4, 0]  # no zero-relevance window
    assert len(select_samples(np.zeros(4), share=0.2)) == 0


def test_select_signed_top_k_and_candidates():
    r = np.array([0.1, -0.5, 0.2, 0.0, 0.3])
    assert list(select_samples(r, share=0.5, rank_by="signed")) == [4]  # 0.3 of 0.6
    assert list(select_samples(r, share=0.6, rank_by="signed")) == [4, 2]
    assert list(select_samples(r, top_k=2)) == [1, 4]
    assert list(select_samples(r, top_k=2, rank_by="signed")) == [4, 2]
    assert list(select_samples(r, top_k=10)) == [1, 4, 2, 0, 3]
    cand = np.array([True, False, True, True, False])
    assert list(select_samples(r, top_k=2, candidates=cand)) == [2, 0]
    assert list(select_samples(r, share=0.6, candidates=cand)) == [2]  # 0.2 of 0.3
    with pytest.raises(ValueError):
        select_samples(r, share=0.0)
    with pytest.raises(ValueError):
        select_samples(r, rank_by="max")


# --------------------------------------------------------------------------- hooks, init
def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def test_hooks_live_only_inside_the_context():
    model = make_model(seed=13)
    ex = ConceptExplainer(model)
    x = windows(2)
    assert _hook_count(ex.model) == 0 and _hook_count(ex.lrp_model) == 0
    with ex:
        assert ex.registered
        assert _hook_count(ex.lrp_model) > 10  # the composite's rules and the mask hook
        inside = ex.attribute(x, 1, [3, 4]).heatmap
        with ex:  # re-entrant: the inner block keeps the rules registered
            ex.layer_relevance(x)
        assert ex.registered
    assert not ex.registered
    assert _hook_count(ex.model) == 0 and _hook_count(ex.lrp_model) == 0
    # a call outside the block registers and removes around itself, with the same result
    outside = ex.attribute(x, 1, [3, 4]).heatmap
    assert torch.equal(inside, outside)
    assert _hook_count(ex.lrp_model) == 0
    # the merged batch norms were reverted: the copy equals the trained model again
    for (k, a), b in zip(ex.lrp_model.state_dict().items(), ex.model.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k


def test_contrast_init_two_classes_are_exact_negatives():
    model = make_model(seed=14)
    x = windows(4)
    ex = ConceptExplainer(model, composite="EpsilonPlus", init="contrast", dtype=torch.float64)
    filters = [0, 5, 9, 15]
    h0 = ex.attribute(x, 0, filters).heatmap
    h1 = ex.attribute(x, 1, filters).heatmap
    assert h0.abs().max() > 0
    assert torch.allclose(h0, -h1, rtol=0, atol=1e-12 * float(h0.abs().max()))
    lr = ex.layer_relevance(x)
    z = lr.logits
    assert torch.allclose(lr.start[0], z[:, 0] - z[:, 1])
    assert torch.allclose(lr.relevance[0], -lr.relevance[1], atol=1e-12)
    # with logit init the two classes are not related this way
    plain = ConceptExplainer(model, composite="EpsilonPlus", dtype=torch.float64)
    assert not torch.allclose(plain.attribute(x, 0, filters).heatmap,
                              -plain.attribute(x, 1, filters).heatmap)


def test_initial_relevance_definitions():
    z = torch.tensor([[2.0, -1.0, 4.0]])
    c = torch.tensor([0])
    assert torch.equal(initial_relevance(z, c, "logit"), torch.tensor([[2.0, 0.0, 0.0]]))
    contrast = initial_relevance(z, c, "contrast")
    assert torch.allclose(contrast, torch.tensor([[2.0, 0.5, -2.0]]))
    assert torch.isclose(contrast.sum(), z[0, 0] - z[0, 1:].mean())
    with pytest.raises(ExplainError, match="unknown init"):
        initial_relevance(z, c, "softmax")


def test_config_layers_are_the_models_conv_layers():
    from zennit.types import Convolution

    model = make_model()
    convs = tuple(n for n, m in model.named_modules() if isinstance(m, Convolution))
    assert convs == EEGNET_CONV_LAYERS

"""EEGNet (eegcrp.models): shapes, constraints, thesis variant, explainability."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from eegcrp.config import ModelConfig
from eegcrp.models import (
    CONCEPT_LAYER,
    ThesisRenorm,
    Unsqueeze,
    apply_max_norm,
    build_model,
    count_parameters,
    remove_thesis_renorm,
)

EEGNET_LAYERS = [
    "unsqueeze", "b1_conv1", "b1_bn1", "b1_conv2", "b1_bn2", "b1_act", "b1_pool", "b1_drop",
    "b2_conv1", "b2_conv2", "b2_bn", "b2_act", "b2_pool", "b2_drop", "flatten", "classifier",
]

# PyTorch warns that 'same' padding of even kernels copies the input (intended).
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _filter_norms(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().flatten(1).norm(dim=1)


@pytest.mark.parametrize("variant", ["eegnet", "thesis"])
@pytest.mark.parametrize(
    ("n_channels", "n_times", "n_classes", "sfreq"),
    [(4, 128, 2, 128.0), (22, 256, 4, 128.0), (64, 384, 2, 128.0), (3, 250, 3, 250.0),
     (1, 64, 2, 64.0), (32, 385, 5, 128.0)],
)
def test_output_shapes(variant, n_channels, n_times, n_classes, sfreq):
    model = build_model(ModelConfig(variant=variant), n_channels, n_times, n_classes, sfreq)
    model.eval()
    out = model(torch.randn(3, n_channels, n_times))
    assert out.shape == (3, n_classes)
    assert torch.isfinite(out).all()


def test_layer_names_and_structure():
    model = build_model(None, 8, 256, 2, 128.0)
    assert isinstance(model, nn.Sequential)
    assert [name for name, _ in model.named_children()] == EEGNET_LAYERS
    assert isinstance(model.unsqueeze, Unsqueeze)
    assert model.b1_conv1.kernel_size == (1, 64)  # sfreq / 2
    assert model.b1_conv2.groups == 8 and model.b1_conv2.out_channels == 16
    assert model.b2_conv1.kernel_size == (1, 16) and model.b2_conv1.groups == 16
    assert getattr(model, CONCEPT_LAYER).out_channels == 16
    for name in ("b1_conv1", "b1_conv2", "b2_conv1", "b2_conv2"):  # BN follows: no bias
        assert getattr(model, name).bias is None
    assert model.classifier.bias is not None
    assert model.max_norms == {"b1_conv2": 1.0, "classifier": 0.25}
    # No hooks or parametrizations hide operations from the explainer.
    for module in model.modules():
        assert not module._forward_pre_hooks and not module._forward_hooks
        assert not hasattr(module, "parametrizations")
    # ~2.5k parameters for 64 channels (thesis_implementation.md section 2)
    assert 2400 < count_parameters(build_model(None, 64, 384, 2, 128.0)) < 2600


def test_kernel_follows_sampling_rate_and_config():
    assert build_model(None, 4, 500, 2, 250.0).b1_conv1.kernel_size == (1, 125)
    model = build_model(ModelConfig(kernel_length=32, F1=4, D=3, F2=10), 4, 128, 2, 128.0)
    assert model.b1_conv1.kernel_size == (1, 32)
    assert model.b1_conv2.out_channels == 12 and model.b2_conv2.out_channels == 10


@pytest.mark.parametrize("n_times", [128, 256, 384, 500, 1000])
@pytest.mark.parametrize("variant", ["eegnet", "thesis"])
def test_flattened_size_matches_braindecode(variant, n_times):
    # braindecode's EEGNetv4: conv pad k//2 (T+1), pool 4, sep conv pad 8 (+1), pool 8.
    expected = 16 * ((((n_times + 1) // 4) + 1) // 8)
    model = build_model(ModelConfig(variant=variant), 4, n_times, 2, 128.0)
    assert model.classifier.in_features == expected


def test_too_short_windows_are_rejected():
    with pytest.raises(ValueError, match="at least 32 samples"):
        build_model(None, 4, 31, 2, 128.0)


def test_max_norm_holds_after_optimizer_step():
    torch.manual_seed(0)
    model = build_model(None, 6, 128, 3, 128.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0)
    x, y = torch.randn(8, 6, 128), torch.randint(0, 3, (8,))
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        exceeded = _filter_norms(model.b1_conv2.weight).max() > 1.0
        apply_max_norm(model)
        assert _filter_norms(model.b1_conv2.weight).max() <= 1.0 + 1e-5
        assert _filter_norms(model.classifier.weight).max() <= 0.25 + 1e-5
    assert exceeded  # the huge step did push the weights outside, so the projection acted
    # Filters inside the ball are left untouched.
    before = model.b1_conv2.weight.detach().clone()
    apply_max_norm(model)
    assert torch.equal(before, model.b1_conv2.weight)


def test_thesis_variant_reproduces_the_thesis_model():
    model = build_model(ModelConfig(variant="thesis"), 32, 384, 2, 128.0)
    names = [name for name, _ in model.named_children()]
    assert "b2_act" not in names
    after_block2 = names[names.index("b2_bn"):]
    assert not any(isinstance(getattr(model, n), nn.ELU) for n in after_block2)
    assert sum(isinstance(m, nn.ELU) for m in model.modules()) == 1
    assert model.b1_conv1.kernel_size == (1, 64) and model.b1_conv1.padding == (0, 32)
    assert model.b2_conv1.kernel_size == (1, 16) and model.b2_conv1.padding == (0, 8)
    assert model.classifier.bias is None and model.max_norms == {}
    assert model.classifier.in_features == 16 * 12  # 385 -> 96 -> 97 -> 12 samples

    # renorm of the spatial weights on every forward call, also in eval mode
    with torch.no_grad():
        model.b1_conv2.weight.mul_(10.0)
    assert _filter_norms(model.b1_conv2.weight).max() > 1.0
    model.eval()
    model(torch.randn(2, 32, 384))
    assert _filter_norms(model.b1_conv2.weight).max() <= 1.0 + 1e-5
    hooks = list(model.b1_conv2._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0], ThesisRenorm)

    assert remove_thesis_renorm(model) == 1
    assert not model.b1_conv2._forward_pre_hooks


def _dead_zplus_samples(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Samples in which some conv output has no positive contribution (z+ = 0).

    The z+ rule cannot redistribute relevance through such a unit (a property of the rule,
    not of the model), so conservation is only checked on the other samples.
    """
    dead = torch.zeros(len(x), dtype=torch.bool)

    def hook(module, inputs, output):
        inp = inputs[0]
        z_plus = module._conv_forward(inp.clamp(min=0), module.weight.clamp(min=0), None)
        z_plus = z_plus + module._conv_forward(inp.clamp(max=0), module.weight.clamp(max=0), None)
        dead.__ior__((z_plus <= 0).flatten(1).any(1))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return dead


def test_lrp_conserves_relevance_through_merged_batch_norms():
    pytest.importorskip("zennit")
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonPlus

    n_channels, n_times, n_classes = 32, 256, 3
    torch.manual_seed(0)
    model = build_model(None, n_channels, n_times, n_classes, 128.0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):  # non-trivial scales to merge
                module.running_var.uniform_(0.5, 2.0, generator=gen)
                module.weight.uniform_(0.5, 1.5, generator=gen)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()  # zennit 0.4.6 rules have no zero_params='bias'
    model.eval().double()
    x = 1000.0 * torch.randn(16, n_channels, n_times, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        logits = model(x)
    target = logits.argmax(1)
    target_logit = logits.gather(1, target[:, None])[:, 0]
    dead = _dead_zplus_samples(model, x)
    assert (~dead).sum() >= 8

    composite = EpsilonPlus(canonizers=[SequentialMergeBatchNorm()])
    with Gradient(model=model, composite=composite) as attributor:
        merged_out, relevance = attributor(
            x, nn.functional.one_hot(target, n_classes).double() * logits
        )
    # merging the batch norms leaves the function unchanged ...
    torch.testing.assert_close(merged_out, logits, rtol=1e-4, atol=0)
    # ... and every bit of the logit arrives at the input (LRP conservation)
    rel_sum = relevance.sum(dim=(1, 2))
    error = ((rel_sum - target_logit) / target_logit.abs())[~dead]
    assert error.abs().max() < 1e-4, error
    # the canonizer was removed again: batch norms are back to their trained state
    assert not torch.allclose(model.b1_bn2.running_var, torch.ones(16, dtype=torch.float64))

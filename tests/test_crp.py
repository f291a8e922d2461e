"""Concept relevance (eegcrp.crp): conservation, masking, batching, two phases, selection."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from eegcrp.config import ExplainConfig, ModelConfig
from eegcrp.crp import (
    COMPOSITES,
    ConceptExplainer,
    ExactMergeBatchNorm,
    build_composite,
    explain_fold,
    select_samples,
    without_bias,
)
from eegcrp.models import build_model

C, T = 4, 128


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(n_channels: int = C, n_times: int = T, seed: int = 0, bias: bool = True,
               bn_eps: float | None = None, variant: str = "eegnet") -> nn.Sequential:
    """A random EEGNet whose batch norms are calibrated on random data like a trained one.

    ``bias=False`` gives a bias-free network (batch-norm shifts, running means and the
    classifier bias zero); otherwise shifts and the classifier bias are random.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(ModelConfig(variant=variant), n_channels, n_times, 2, 128.0)
    x = torch.randn(64, n_channels, n_times, generator=gen)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = None
                mod.reset_running_stats()
        model.train()
        model(x)
        model.eval()
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                if bn_eps is not None:
                    mod.eps = bn_eps
                mod.weight.uniform_(0.5, 1.5, generator=gen)
                if bias:
                    mod.bias.normal_(0.0, 0.3, generator=gen)
                else:
                    mod.running_mean.zero_()
                    mod.bias.zero_()
        if model.classifier.bias is not None:
            if bias:
                model.classifier.bias.normal_(0.0, 0.5, generator=gen)
            else:
                model.classifier.bias.zero_()
    return model


def windows(n: int = 8, n_channels: int = C, n_times: int = T, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, n_channels, n_times, generator=torch.Generator().manual_seed(seed))


def rel_close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    """|a - b| <= tol * max|b| elementwise (relative to the array's scale)."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return bool((a - b).abs().max() <= tol * b.abs().max())


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
    with pytest.raises(ValueError, match="not a conv layer"):
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


# --------------------------------------------------------------------------- fold runner
class ArrayData:
    """Minimal dataset: get_data(subjects) like EEGDataset."""

    def __init__(self, x, y, groups, classes=("a", "b"), sfreq=128.0):
        self.x, self.y, self.groups = x, y, np.asarray(groups)
        self.classes, self.sfreq = list(classes), sfreq
        self.ch_names = [f"E{i}" for i in range(x.shape[1])]
        self.subjects = list(dict.fromkeys(self.groups.tolist()))
        self.name = "arrays"

    def get_data(self, subjects=None):
        subjects = self.subjects if subjects is None else list(subjects)
        idx = np.flatnonzero(np.isin(self.groups, subjects))
        return self.x[idx], self.y[idx], self.groups[idx]


def save_checkpoint(path, model, data: ArrayData, subject: str, repetition: int = 0) -> None:
    """A checkpoint in the training module's format."""
    from eegcrp.training import CHECKPOINT_FORMAT

    others = [s for s in data.subjects if s != subject]
    torch.save({
        "format": CHECKPOINT_FORMAT,
        "state_dict": model.state_dict(),
        "config_hash": "test",
        "ch_names": data.ch_names,
        "sfreq": data.sfreq,
        "n_times": data.x.shape[2],
        "classes": data.classes,
        "model_config": ModelConfig().model_dump(mode="json"),
        "normalization": {"method": "zscore_window", "axes": "channels x time", "ddof": 0},
        "repetition": repetition,
        "test_subject": subject,
        "train_subjects": others,
        "val_subjects": [],
    }, path)


def make_data(n_per_subject: int = 12, subjects=("s1", "s2", "s3"), seed: int = 0) -> ArrayData:
    rng = np.random.default_rng(seed)
    n = n_per_subject * len(subjects)
    x = (rng.standard_normal((n, C, T)) * 1e-5).astype(np.float32)
    y = np.tile([0, 1], n // 2)
    groups = np.repeat(list(subjects), n_per_subject)
    return ArrayData(x, y, groups)


def test_two_phase_equals_computing_everything(tmp_path):
    from eegcrp.training import normalize_windows

    data = make_data()
    model = make_model(seed=10)
    ckpt = tmp_path / "rep00_sub-s2.pt"
    save_checkpoint(ckpt, model, data, "s2")
    cfg = ExplainConfig(batch_size=7, device="cpu")  # chunks cross class/filter boundaries
    out = tmp_path / "fold.h5"
    record = explain_fold(ckpt, data, cfg, out)
    assert record["n_samples"] == 12 and record["n_pairs"] > 0

    # everything, naively: all windows x filters x classes, one condition per pass
    x, y, _ = data.get_data(["s2"])
    xn = torch.as_tensor(normalize_windows(x))
    ex = ConceptExplainer(model, device="cpu")
    full = {}
    for c in (0, 1):
        for f in range(16):
            full[c, f] = ex.attribute(xn, c, [f] * len(xn))
    with h5py.File(out, "r") as h5:
        pairs = {k: h5["pairs"][k][()] for k in ("class", "filter", "sample", "relevance")}
        heat = h5["pairs/heatmaps"][()]
        rel_time = h5["pairs/relevance_time"][()]
        act_time = h5["pairs/activation_time"][()]
        totals = h5["samples/filter_relevance"][()]
        act_mean = h5["summary/activation_mean"][()]
        n_sel = h5["summary/n_selected"][()]
        attrs = dict(h5.attrs)
    _, act = ex.predict(xn)
    for c in (0, 1):
        for f in range(16):
            lr = full[c, f].layer_relevance[:, f].flatten(1, -2).sum(1)  # (n, T')
            assert rel_close(torch.as_tensor(totals[c, :, f]), lr.sum(-1), 1e-5)
    rows = zip(pairs["class"], pairs["filter"], pairs["sample"], strict=True)
    for row, (c, f, i) in enumerate(rows):
        ref = full[int(c), int(f)]
        assert rel_close(torch.as_tensor(heat[row]), ref.heatmap[i], 1e-5)
        assert rel_close(torch.as_tensor(rel_time[row]),
                         ref.layer_relevance[i, f].flatten(0, -2).sum(0), 1e-5)
        assert rel_close(torch.as_tensor(act_time[row]), act[i, f].flatten(0, -2).mean(0), 1e-6)
        assert y[i] == c  # by_class: windows of class c explain class c
    # selection = the rule applied to the naive totals
    for c in (0, 1):
        for f in range(16):
            want = select_samples(totals[c, :, f], share=0.2, candidates=y == c)
            got = pairs["sample"][(pairs["class"] == c) & (pairs["filter"] == f)]
            assert list(got) == list(want)
            assert n_sel[c, f] == len(want)
            if len(want):
                mean = act[want, f].flatten(1, -2).mean(1).mean(0)
                assert np.allclose(act_mean[c, f], mean.numpy(), atol=1e-6)
    assert attrs["conservation_upper"] < 1e-4
    assert json.loads(attrs["ch_names"]) == data.ch_names


def test_explain_fold_options(tmp_path):
    data = make_data()
    model = make_model(seed=11)
    ckpt = tmp_path / "rep01_sub-s1.pt"
    save_checkpoint(ckpt, model, data, "s1", repetition=1)
    cfg = ExplainConfig(selection="top_k", top_k=3, select_from="train", correctness="correct",
                        short_time=True, short_time_window=0.5, device="cpu",
                        composite="EpsilonGammaBox")
    record = explain_fold(ckpt, data, cfg, tmp_path / "f.h5")
    assert record["n_samples"] == 24 and record["repetition"] == 1
    with h5py.File(tmp_path / "f.h5", "r") as h5:
        subjects = h5["samples/subject"][()].astype(str)
        assert set(subjects) == {"s2", "s3"}
        n_sel = h5["summary/n_selected"][()]
        assert n_sel.max() <= 3
        sample = h5["pairs/sample"][()]
        y, pred = h5["samples/y"][()], h5["samples/pred"][()]
        assert np.all(y[sample] == pred[sample])
        assert h5["pairs/tf_relevance"].shape[1:] == (C, *h5["summary/tf_relevance_sum"].shape[3:])
        tf = h5["pairs/tf_relevance"][()].sum((2, 3))
        spec = h5["pairs/spectral_relevance"][()].sum(2)
        heat = h5["pairs/heatmaps"][()].sum(2)
        assert np.allclose(tf, heat, rtol=1e-4, atol=1e-6 * np.abs(heat).max())
        assert np.allclose(spec, heat, rtol=1e-4, atol=1e-6 * np.abs(heat).max())


def test_explain_fold_rejects_mismatched_data(tmp_path):
    from eegcrp.crp import ExplainError

    data = make_data()
    ckpt = tmp_path / "rep00_sub-s1.pt"
    save_checkpoint(ckpt, make_model(seed=12), data, "s1")
    other = ArrayData(np.zeros((4, C + 1, T), np.float32), np.array([0, 1, 0, 1]),
                      ["s1"] * 4)
    with pytest.raises(ExplainError, match="do not match"):
        explain_fold(ckpt, other, ExplainConfig(device="cpu"), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_fold_identity_from_metadata_or_file_name(tmp_path):
    from eegcrp.crp import ExplainError, _fold_identity

    path = tmp_path / "rep03_sub-07.pt"
    assert _fold_identity({"repetition": 1, "test_subject": "x"}, path) == (1, "x")
    assert _fold_identity({"subject": "y"}, path) == (3, "y")
    assert _fold_identity({}, path) == (3, "07")
    with pytest.raises(ExplainError):
        _fold_identity({}, tmp_path / "model.pt")

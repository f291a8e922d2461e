"""The fast EEGNet engine against the reference Sequential (eegcrp.training.engine).

Exactness in float64 (<= 1e-12 relative), float32 no worse than the reference's own
float32 error, three epochs of training, eval forwards of trained checkpoints, and the
operations it is built from.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eegcrp.config import ModelConfig
from eegcrp.errors import TrainingError
from eegcrp.models import apply_max_norm, build_model
from eegcrp.training.engine import (
    FastEEGNet,
    batch_moments,
    depthwise_conv1d,
    engine_for,
    time_pool,
    window_autocorrelation,
)
from tests.helpers import real_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(channels: int, n_times: int, dtype=torch.float64, seed: int = 0, kernel=None):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(kernel_length=kernel), channels, n_times, 2, 128.0)
    with torch.no_grad():  # batch norms away from their initial identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model.to(dtype)


def _windows(channels: int, n_times: int, n: int = 24, seed: int = 1) -> np.ndarray:
    """Coloured noise with a per-channel offset (batch means must not be ~0 by chance)."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((n, channels, n_times + 8))
    smooth = np.cumsum(white, -1)[..., 8:] - np.cumsum(white, -1)[..., :-8]
    return smooth / 3 + rng.uniform(-0.5, 0.5, (1, channels, 1))


def _real_windows(channels: int) -> np.ndarray:
    """Normalised real windows with ``channels`` channels (3: BCI IV 2b, 19: eegmat,
    64: EEGMMIDB), the first 24 of subject 1."""
    from eegcrp.config import load_config
    from eegcrp.data import get_loader
    from eegcrp.training import normalize_windows

    kind, folder = {3: ("bciciv2b", "bciciv2b_epoched"), 19: ("eegmat", "eegmat_arithmetic_21ch"),
                    64: ("eegmmidb", "eegmmidb_mi")}[channels]
    real_folder(folder)
    loader = get_loader(load_config({"dataset": {"kind": kind, "subjects": [1]}}).dataset)
    epochs = loader.load_subject(loader.subject_ids()[0])
    data = epochs.get_data(copy=False)[:24, :, :384]
    return normalize_windows(data.astype(np.float64))


def _step(net, params, x, y, seed):
    for p in params.values():
        p.grad = None
    torch.manual_seed(seed)  # the same dropout masks for both
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return logits.detach(), loss.detach(), {n: p.grad.clone() for n, p in params.items()
                                            if p.grad is not None}


def _compare_step(x: np.ndarray, dtype=torch.float64, kernel=None):
    """One training step of both engines from the same state: logits, loss, gradients and
    the state dicts afterwards (running statistics)."""
    ref = _model(x.shape[1], x.shape[2], dtype, kernel=kernel).train()
    fast_model = copy.deepcopy(ref)
    fast = FastEEGNet(fast_model).train()
    xt = torch.as_tensor(x, dtype=dtype)
    y = torch.arange(len(x)) % 2
    a = _step(ref, dict(ref.named_parameters()), xt, y, 3)
    b = _step(fast, dict(fast_model.named_parameters()), xt, y, 3)
    return a, b, ref.state_dict(), fast_model.state_dict()


def _rel(a: torch.Tensor, b: torch.Tensor, scale: float | None = None) -> float:
    scale = scale or float(a.detach().abs().max())
    return float((a - b).detach().abs().max()) / max(scale, 1e-300)


@pytest.mark.parametrize(("channels", "kernel"), [(3, None), (19, 16), (64, None)])
def test_one_training_step_float64_equals_the_reference(channels, kernel):
    x = _windows(channels, 384)
    (lr, loss_r, grad_r), (lf, loss_f, grad_f), state_r, state_f = _compare_step(x, kernel=kernel)
    assert _rel(lr, lf) < 1e-12 and abs(float(loss_r - loss_f)) < 1e-12
    assert set(grad_r) == set(grad_f) and "b1_bn1.bias" not in grad_r  # frozen
    scale = max(float(g.abs().max()) for g in grad_r.values())
    for name in grad_r:  # per tensor, against the largest gradient of the model
        assert _rel(grad_r[name], grad_f[name], scale) < 1e-12, name
    for name in state_r:
        assert torch.allclose(state_r[name].double(), state_f[name].double(), rtol=1e-12,
                              atol=1e-15), name


@pytest.mark.realdata
@pytest.mark.parametrize("channels", [3, 19, 64])
def test_one_training_step_on_real_windows(channels):
    x = _real_windows(channels)
    (lr, _, grad_r), (lf, _, grad_f), _, _ = _compare_step(x)
    scale = max(float(g.abs().max()) for g in grad_r.values())
    assert _rel(lr, lf) < 1e-12
    assert all(_rel(grad_r[n], grad_f[n], scale) < 1e-12 for n in grad_r)
    # float32: no worse than the reference's own float32 error against float64
    (l32, _, g32), (f32, _, h32), _, _ = _compare_step(x, torch.float32)
    ref_error = max(_rel(lr, l32.double()),
                    max(_rel(grad_r[n], g32[n].double(), scale) for n in grad_r))
    fast_error = max(_rel(lr, f32.double()),
                     max(_rel(grad_r[n], h32[n].double(), scale) for n in grad_r))
    assert fast_error <= 2 * ref_error + 1e-7


def test_three_epochs_float64_give_the_same_parameters():
    x = torch.as_tensor(_windows(8, 256, n=48))
    y = torch.arange(48) % 2
    ref = _model(8, 256, kernel=32)
    fast_model = copy.deepcopy(ref)
    fast = FastEEGNet(fast_model)
    auto = window_autocorrelation(x, fast.kernel)
    for net, model, extra in ((ref, ref, False), (fast, fast_model, True)):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(0)
        torch.manual_seed(11)
        net.train()
        for _ in range(3):
            for rows in np.array_split(rng.permutation(48), 4):
                rows = torch.as_tensor(rows)
                optimizer.zero_grad()
                out = net(x[rows], auto[rows]) if extra else net(x[rows])
                F.cross_entropy(out, y[rows]).backward()
                optimizer.step()
                apply_max_norm(model)
    for (name, a), b in zip(ref.state_dict().items(), fast_model.state_dict().values(),
                            strict=True):
        assert torch.allclose(a.double(), b.double(), rtol=1e-10, atol=1e-12), name
    ref.eval()
    fast.eval()
    with torch.no_grad():
        assert _rel(ref(x), fast(x)) < 1e-12


def test_eval_forward_of_a_trained_checkpoint_equals_the_sequential(tiny_study):
    from eegcrp.io import load_checkpoint
    from eegcrp.stages.prepare import load_prepared
    from eegcrp.stages.registry import require
    from eegcrp.training import normalize_windows

    folds = sorted((tiny_study.output_dir / "training" / "folds").glob("*.pt"))
    model, meta = load_checkpoint(folds[0])
    data = load_prepared(require("prepare", tiny_study))
    x = torch.as_tensor(normalize_windows(data.get_data()[0]), dtype=torch.float32)
    with torch.no_grad():
        ref = model(x)
        fast = FastEEGNet(model).eval()(x)
    assert _rel(ref, fast) < 1e-5
    assert meta["training_config"]["engine"] == "fast"  # trained with the fast engine ...
    manifest = require("explain", tiny_study)  # ... and its relevance still conserves
    assert all(f["conservation_upper"] < 1e-3 for f in manifest.extra["folds"].values())


def test_state_dicts_and_parameters_are_shared_both_ways():
    model = _model(4, 256, torch.float32, kernel=16)
    fast = FastEEGNet(model)
    assert list(fast.state_dict()) == list(model.state_dict())
    assert all(a is b for a, b in zip(fast.parameters(), model.parameters(), strict=True))
    other = _model(4, 256, torch.float32, seed=5, kernel=16)
    fast.load_state_dict(other.state_dict())
    assert torch.equal(model.b1_conv1.weight, other.b1_conv1.weight)


def test_engine_refuses_what_it_cannot_compute_exactly(caplog):
    thesis = build_model(ModelConfig(variant="thesis"), 4, 384, 2, 128.0)
    with caplog.at_level("INFO", logger="eegcrp.training.engine"):
        assert engine_for(thesis, "fast") is thesis  # the reference modules, said so
    assert "thesis variant runs on the reference engine" in caplog.text
    with pytest.raises(TrainingError, match="variant 'eegnet'"):
        FastEEGNet(thesis)
    fast = FastEEGNet(build_model(None, 4, 64, 2, 128.0))  # kernel 64 > half the window
    with pytest.raises(TrainingError, match="shorter than twice EEGNet's first kernel"):
        fast(torch.zeros(2, 4, 64))
    assert engine_for(thesis, "reference") is thesis


def test_depthwise_conv_and_its_gradients_equal_pytorch():
    torch.manual_seed(0)
    x = torch.randn(5, 6, 100, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 1, 16, dtype=torch.float64, requires_grad=True)
    g = torch.randn(5, 6, 100, dtype=torch.float64)
    ours = depthwise_conv1d(x, w, 7, 8)
    (ours * g).sum().backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    ref = F.conv1d(F.pad(x, (7, 8)), w, groups=6)
    (ref * g).sum().backward()
    assert _rel(ref, ours) < 1e-14
    assert _rel(x.grad, gx) < 1e-13 and _rel(w.grad, gw) < 1e-13


def test_time_pool_is_avgpool():
    x = torch.randn(3, 16, 1, 387)
    for size in (4, 8):
        assert torch.equal(time_pool(x, size), torch.nn.AvgPool2d((1, size))(x))


def test_batch_moments_equal_their_definition():
    x = torch.as_tensor(_windows(5, 128, n=6))
    kernel, left = 32, 15
    m, big_m, n = batch_moments(x, kernel)
    padded = F.pad(x, (left, kernel - 1 - left)).unfold(-1, 128, 1)  # [b, c, i, t]
    assert n == 6 * 5 * 128
    assert torch.allclose(m, padded.sum((0, 1, 3)), rtol=1e-12, atol=1e-10)
    want = torch.einsum("bcit,bcjt->ij", padded, padded)
    assert torch.allclose(big_m, want, rtol=1e-12, atol=1e-9)

"""The training loop of one model: normalisation, device, optimisation, early stopping.

* **Normalisation.** Each window is z-scored over channels x time inside the data path
  (:func:`normalize_windows`); the cached preprocessed data stay in volts. Explanations must
  feed the model windows normalised the same way (the checkpoint records how).
* **Optimisation.** Adam, cross-entropy weighted by inverse class frequency (balanced
  weights, so imbalanced classes count equally), shuffled mini-batches drawn by index from
  tensors held in memory (no DataLoader), max-norm projection after every step
  (:func:`eegcrp.models.apply_max_norm`).
* **Model selection.** With validation data, training stops when the monitored validation
  score has not improved for ``patience`` epochs (or at ``max_epochs``) and the weights of
  the best epoch are restored.
* ``protocol: thesis`` runs exactly ``max_epochs`` epochs on unshuffled batches with an
  unweighted loss and keeps the final weights (thesis_implementation.md section 3).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Any

import numpy as np
import torch
from torch import nn

from eegcrp.config import TrainingConfig
from eegcrp.errors import TrainingError
from eegcrp.models import apply_max_norm, build_model

from .engine import FastEEGNet, engine_for, window_autocorrelation

logger = logging.getLogger(__name__)

__all__ = ["check_model_input", "normalize_windows", "resolve_device", "retain_freed_memory",
           "train_model"]


def normalize_windows(x: np.ndarray, ddof: int = 0, chunk: int = 4096) -> np.ndarray:
    """Z-score every window over channels x time.

    Parameters
    ----------
    x : ndarray, shape (n_windows, n_channels, n_times)
        Windows (any unit).
    ddof : int
        Delta degrees of freedom of the standard deviation (0 here; the thesis' torch code
        used the unbiased 1).
    chunk : int
        Windows normalised at once (bounds the float64 scratch memory).

    Returns
    -------
    ndarray of float32, same shape
        Zero mean and unit standard deviation per window; constant windows become zeros.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"expected windows x channels x times, got shape {x.shape}")
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk].astype(np.float64)
        mean = block.mean(axis=(1, 2), keepdims=True)
        std = block.std(axis=(1, 2), keepdims=True, ddof=ddof)
        std[~(std > 0)] = 1.0
        out[start : start + chunk] = (block - mean) / std
    return out


_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_malloc_tuned: bool | None = None


def retain_freed_memory(children: bool = False) -> bool:
    """Let glibc's malloc reuse freed activation buffers instead of unmapping them.

    Every training step allocates and frees the same large buffers (a batch of 128 windows
    of 19 x 384 gives 30 MB activations of the first layer). glibc serves blocks above its
    mmap threshold (at most 32 MB, adapted at run time) with fresh ``mmap`` calls and trims
    the heap top after frees, so each step faults its pages in again: in a 72-fold eegmat
    LOSO run, 25 % of the CPU time was kernel time (1.4e9 minor page faults). Raising the
    mmap threshold and disabling trimming removes most of that (see BENCHMARKS.md). Results
    are unchanged; the process keeps its peak heap (~50-200 MB more resident memory).

    Process-wide and idempotent, so it is the command line's to call (once, at start), never
    a library function's. Does nothing off glibc or when the user set malloc tunables
    (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES``).

    Parameters
    ----------
    children : bool
        Also export the thresholds as glibc's environment tunables, so that worker
        processes started later (loky, a local Dask cluster, Ray) begin with them.

    Returns
    -------
    bool
        Whether the thresholds are set in this process.
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _MALLOC_ENV):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    # glibc may refuse thresholds above its mmap maximum; 32 MB is always accepted
    mapped = mallopt(m_mmap_threshold, 1 << 30) or mallopt(m_mmap_threshold, 32 << 20)
    trimmed = mallopt(m_trim_threshold, (1 << 31) - 1)
    _malloc_tuned = bool(mapped and trimmed)
    logger.debug("malloc thresholds raised: %s", _malloc_tuned)
    if _malloc_tuned and children:
        # glibc's tunables refuse an mmap threshold above 32 MB on 64-bit systems
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(32 << 20)
        os.environ["MALLOC_TRIM_THRESHOLD_"] = str((1 << 31) - 1)
    return _malloc_tuned


def resolve_device(device: str = "auto", key: str = "training.device") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``.

    ``key`` names the config key in the error raised when CUDA is asked for but absent.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise TrainingError(f"{key} {device!r} is not a device ({exc}); use 'auto' or 'cpu'") \
            from None
    if resolved.type == "cuda" and (
        not torch.cuda.is_available()
        or (resolved.index or 0) >= torch.cuda.device_count()
    ):
        raise TrainingError(
            f"{key} is {device!r} but that CUDA device is not available "
            f"({torch.cuda.device_count()} found); set {key} to 'auto' or 'cpu'"
        )
    return resolved


def check_model_input(config: Any, n_channels: int, n_times: int, n_classes: int,
                      sfreq: float, engine: str = "reference") -> None:
    """Raise a :class:`TrainingError` naming the setting to change when the model cannot be
    built or computed by ``engine`` for these inputs (e.g. windows too short for EEGNet's
    pools, or for the fast engine)."""
    try:
        model = build_model(config, n_channels, n_times, n_classes, sfreq)
    except ValueError as exc:
        raise TrainingError(f"{exc}: set preprocessing.window (or the model's kernel "
                            "lengths) so that the windows fit the model") from None
    net = engine_for(model, engine)
    if isinstance(net, FastEEGNet):
        net.check_times(n_times)


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def _evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, criterion: nn.Module | None,
    batch_size: int,
) -> tuple[float, float, torch.Tensor]:
    """Loss, accuracy and logits of ``model`` (eval mode) on ``x``."""
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunks.append(model(x[start : start + batch_size]))
    logits = torch.cat(chunks) if chunks else torch.empty(0)
    if y is None or criterion is None or len(x) == 0:
        return float("nan"), float("nan"), logits
    loss = float(criterion(logits, y))
    acc = float((logits.argmax(1) == y).float().mean())
    return loss, acc, logits


def train_model(
    model: nn.Module,
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    x_val: np.ndarray | torch.Tensor | None = None,
    y_val: np.ndarray | torch.Tensor | None = None,
    *,
    config: TrainingConfig | None = None,
    rng: np.random.Generator | None = None,
    n_classes: int | None = None,
    device: torch.device | str | None = None,
    early_stopping: bool = True,
    epochs: int | None = None,
    autocorrelation: np.ndarray | torch.Tensor | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place on already normalised windows.

    With validation data (and ``protocol: default``) training stops after ``patience``
    epochs without a better validation score (``config.monitor``: lower loss, or higher
    balanced accuracy or ROC AUC with ties broken by lower loss; no epoch before
    ``min_epochs`` is picked) and the best epoch's weights are restored; otherwise it runs
    ``max_epochs`` epochs and keeps the final weights.

    Parameters
    ----------
    model : nn.Module
        Model from :func:`eegcrp.models.build_model` (max-norm read from ``model.max_norms``).
    x_train, y_train : array or tensor
        Windows (n, C, T) and class indices (n,).
    x_val, y_val : array or tensor | None
        Validation windows and labels; None = no validation.
    config : TrainingConfig | None
        Epochs, batch size, learning rate, patience and protocol.
    rng : Generator | None
        Shuffles the batches (ignored by the thesis protocol).
    n_classes : int | None
        Classes (default: ``max(y_train) + 1``).
    device : torch.device | str | None
        Default: ``config.device``.
    early_stopping : bool
        False: record the validation scores of every epoch but neither stop nor restore
        (the inner loop of ``model_selection: inner_cv``).
    epochs : int | None
        Train this many epochs instead of ``config.max_epochs``.
    autocorrelation : array or tensor | None
        Rows of :func:`eegcrp.training.engine.window_autocorrelation` of ``x_train`` (the fast
        engine's per-window moments, computed once per study by the LOSO engine); computed
        here when None and ``config.engine`` is 'fast'.

    Returns
    -------
    dict
        ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``val_balanced_acc``,
        ``val_roc_auc`` (per epoch; the training values are averages over the epoch's batches
        in training mode), ``epochs_trained``, ``best_epoch`` (1-based), ``stopped_early``.

    Notes
    -----
    Training allocates and frees the same large buffers every step: the ``eegcrp`` command
    calls :func:`retain_freed_memory` once for itself and its workers; a script that trains
    many models may call it too (results are unchanged).
    """
    config = config or TrainingConfig()
    thesis = config.protocol == "thesis"
    device = torch.device(device) if device is not None else resolve_device(config.device)
    rng = rng if rng is not None else np.random.default_rng(config.seed)
    model.to(device)

    def tensor(a: Any, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a, dtype=dtype).to(
            device
        )

    xt, yt = tensor(x_train, torch.float32), tensor(y_train, torch.long)
    n = len(xt)
    if n == 0:
        raise TrainingError("no training windows; check the subjects and the windowing")
    n_classes = int(n_classes or int(yt.max()) + 1)
    has_val = x_val is not None and y_val is not None and len(x_val) > 0 and not thesis
    if has_val:
        xv, yv = tensor(x_val, torch.float32), tensor(y_val, torch.long)

    if thesis:
        criterion = nn.CrossEntropyLoss()
        val_criterion = nn.CrossEntropyLoss()
    else:
        y_np = yt.cpu().numpy()
        weights = _class_weights(y_np, n_classes)
        missing = [c for c in range(n_classes) if weights[c] == 0]
        if missing:
            logger.warning("class(es) %s absent from the training data of this fold", missing)
        criterion = nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32,
                                                            device=device))
        val_criterion = None
        if has_val:
            vw = _class_weights(yv.cpu().numpy(), n_classes)
            val_criterion = nn.CrossEntropyLoss(
                weight=torch.tensor(vw, dtype=torch.float32, device=device)
            )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    eval_batch = max(config.batch_size, 1024)
    net = engine_for(model, config.engine)  # shares model's parameters
    if isinstance(net, FastEEGNet):
        net.check_times(xt.shape[-1])
        auto = (window_autocorrelation(xt, net.kernel) if autocorrelation is None
                else torch.as_tensor(autocorrelation, dtype=torch.float64)).to(device)

        def forward(xb: torch.Tensor, rows: torch.Tensor | slice) -> torch.Tensor:
            return net(xb, auto[rows])
    else:
        def forward(xb: torch.Tensor, rows: torch.Tensor | slice) -> torch.Tensor:
            return net(xb)

    history: dict[str, Any] = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [],
                               "val_balanced_acc": [], "val_roc_auc": []}
    n_epochs = int(epochs or config.max_epochs)
    best_epoch, best_state = 0, None
    best_score: tuple[float, float] = (float("inf"), float("inf"))
    stopped_early = False
    epoch = 0
    for epoch in range(1, n_epochs + 1):
        net.train()
        order = None if thesis else torch.as_tensor(rng.permutation(n), device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for start in range(0, n, config.batch_size):
            rows = slice(start, start + config.batch_size)
            if order is not None:
                rows = order[rows]
            xb, yb = xt[rows], yt[rows]
            optimizer.zero_grad(set_to_none=True)
            logits = forward(xb, rows)
            loss = criterion(logits, yb)
            loss.backward()
            optimizer.step()
            apply_max_norm(model)
            loss_sum += loss.detach() * len(yb)
            correct += (logits.detach().argmax(1) == yb).sum()
        train_loss = float(loss_sum) / n
        if not np.isfinite(train_loss):
            raise TrainingError(
                f"training loss became {train_loss} in epoch {epoch}; lower "
                "training.learning_rate or check the data for extreme values"
            )
        history["train_loss"].append(train_loss)
        history["train_acc"].append(float(correct) / n)
        if not has_val:
            continue
        val_loss, val_acc, val_logits = _evaluate(net, xv, yv, val_criterion, eval_batch)
        val_bacc = _balanced_accuracy(yv, val_logits.argmax(1))
        val_auc = _roc_auc(yv, val_logits, n_classes)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        history["val_balanced_acc"].append(val_bacc)
        history["val_roc_auc"].append(val_auc)
        if not early_stopping or epoch < min(config.min_epochs, n_epochs):
            continue
        score = _selection_score(config.monitor, val_loss, val_bacc, val_auc)
        if score < best_score:
            best_score, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = epoch
    model.eval()
    history.update(epochs_trained=epoch, best_epoch=best_epoch, stopped_early=stopped_early)
    return history


def _selection_score(monitor: str, loss: float, bacc: float, auc: float
                     ) -> tuple[float, float]:
    """Lower is better: the monitored score first, ties broken by the lower loss."""
    if monitor == "val_balanced_accuracy":
        # balanced, like the class-weighted loss: on imbalanced validation subjects plain
        # accuracy would favour epochs that predict the majority class
        return (-bacc, loss)
    if monitor == "val_roc_auc":
        return (-auc if np.isfinite(auc) else 0.0, loss)
    return (loss, 0.0)


def _roc_auc(y: torch.Tensor, logits: torch.Tensor, n_classes: int) -> float:
    """ROC AUC of the validation logits (one-vs-rest for more classes); NaN for one class."""
    from sklearn.metrics import roc_auc_score

    y_np = y.cpu().numpy()
    if len(np.unique(y_np)) < 2:
        return float("nan")
    proba = torch.softmax(logits.double(), dim=1).cpu().numpy()
    if n_classes == 2:
        return float(roc_auc_score(y_np, proba[:, 1]))
    present = np.unique(y_np)
    sub = proba[:, present] / proba[:, present].sum(1, keepdims=True)
    return float(roc_auc_score(y_np, sub, multi_class="ovr", labels=list(present)))


def _balanced_accuracy(y: torch.Tensor, pred: torch.Tensor) -> float:
    """Mean recall over the classes present in ``y`` (= accuracy when classes are balanced)."""
    recalls = [int((pred[y == c] == c).sum()) / int((y == c).sum())
               for c in torch.unique(y).tolist()]
    # Rounded so that equal scores compare equal whatever the per-class split (k0/n + k1/n
    # differs from (k0 + k1)/n in the last bit); ties must go to the lower validation loss.
    return round(sum(recalls) / len(recalls), 12)

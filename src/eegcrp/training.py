"""Leave-one-subject-out (LOSO) training of EEGNet, repeated, resumable and parallel.

For each repetition ``r`` and each subject ``s`` a fold trains a fresh model on all other
subjects and tests it on ``s``:

* **Seeds.** Every fold derives its own seeds from ``(training.seed, r, s)`` through a
  :class:`numpy.random.SeedSequence`: one stream picks the validation subjects, one shuffles
  the batches, one seeds torch (weights, dropout). Folds are therefore independent of each
  other, of the order they run in, of ``n_jobs`` and of the backend.
* **Validation** (``validation_subjects`` > 0) uses whole *training* subjects, chosen by the
  fold's seed. Training stops when the validation loss has not improved for ``patience``
  epochs (or at ``max_epochs``) and the weights of the best epoch are restored. The test
  subject is used only once, after the fold's model is final.
* **Optimisation.** Adam, cross-entropy weighted by inverse class frequency (balanced
  weights, so imbalanced classes count equally), shuffled mini-batches drawn by index from
  tensors held in memory (no DataLoader), max-norm projection after every step
  (:func:`eegcrp.models.apply_max_norm`).
* **Normalisation.** Each window is z-scored over channels x time inside the data path
  (:func:`normalize_windows`); the cached preprocessed data stay in volts. Explanations must
  feed the model windows normalised the same way (the checkpoint records how).

``protocol: thesis`` reproduces the thesis' training loop (thesis_implementation.md section
3): exactly ``max_epochs`` epochs (500 in the thesis), no validation, no early stopping, the
final model, unshuffled batches in subject order, unweighted cross-entropy, the unbiased
(ddof=1) standard deviation in the z-score and torch seed ``r * n_subjects + k`` for the k-th
subject. Its common average reference comes from preprocessing (``preprocessing.car``).

Outputs go to ``<out_dir>/training/``: ``run.json`` (what was trained), ``metrics.csv`` (one
row per repetition x test subject) and per fold ``folds/rep{r:02d}_sub-{s}.pt`` (weights plus
everything needed to use the model without the config, see :func:`load_checkpoint`) and
``folds/rep{r:02d}_sub-{s}.json`` (metrics, learning curves, test predictions). Files are
written atomically; the JSON is written last and marks the fold as done, so a re-run skips
finished folds and a killed run never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import logging
import os
import platform
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from eegcrp.config import ModelConfig, TrainingConfig, config_hash
from eegcrp.errors import TrainingError
from eegcrp.io import nan_to_none, write_bytes_atomic, write_json_atomic
from eegcrp.models import apply_max_norm, build_model

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FORMAT",
    "METRICS",
    "FoldSpec",
    "LOSOTrainer",
    "TrainingError",
    "fold_metrics",
    "fold_seeds",
    "load_checkpoint",
    "loso_splits",
    "normalize_windows",
    "pooled_metrics",
    "resolve_device",
    "retain_freed_memory",
    "summarize",
    "train_model",
]

#: Version of the checkpoint / fold JSON layout.
CHECKPOINT_FORMAT = 1

#: Per-fold scores written to metrics.csv.
METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc")

# Training-config fields that do not change results (excluded from the run's hash, so a run
# can be resumed with more repetitions, other parallelism or another device).
_NON_RESULT_FIELDS = ("repetitions", "n_jobs", "backend", "dask_address", "device", "threads")

# torch's global RNG is per process: folds sharing a process (threads of a dask worker) run
# one at a time so that each fold's seeds alone decide its result.
_FOLD_LOCK = threading.Lock()


# --------------------------------------------------------------------------- data path
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


def retain_freed_memory() -> bool:
    """Let glibc's malloc reuse freed activation buffers instead of unmapping them.

    Every training step allocates and frees the same large buffers (a batch of 128 windows
    of 19 x 384 gives 30 MB activations of the first layer). glibc serves blocks above its
    mmap threshold (at most 32 MB, adapted at run time) with fresh ``mmap`` calls and trims
    the heap top after frees, so each step faults its pages in again: in a 72-fold eegmat
    LOSO run, 25 % of the CPU time was kernel time (1.4e9 minor page faults). Raising the
    mmap threshold and disabling trimming removes most of that (see BENCHMARKS.md). Results
    are unchanged; the process keeps its peak heap (~50-200 MB more resident memory).

    Process-wide and idempotent. Does nothing off glibc or when the user set malloc tunables
    (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES``).

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
    return _malloc_tuned


def resolve_device(device: str = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            f"training.device is {device!r} but CUDA is not available; set training.device "
            "to 'auto' or 'cpu'"
        )
    return resolved


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- splits and seeds
def _subject_key(subject: str) -> int:
    return int.from_bytes(hashlib.sha256(str(subject).encode()).digest()[:8], "little")


def fold_seeds(seed: int, repetition: int, subject: str) -> tuple[
    np.random.Generator, np.random.Generator, int
]:
    """Seeds of one fold: (validation-split rng, batch-shuffle rng, torch seed)."""
    root = np.random.SeedSequence([int(seed), int(repetition), _subject_key(subject)])
    split, shuffle, torch_ss = root.spawn(3)
    torch_seed = int(torch_ss.generate_state(1, np.uint64)[0] % (2**63 - 1))
    return np.random.default_rng(split), np.random.default_rng(shuffle), torch_seed


def loso_splits(
    subjects: Sequence[str],
    validation_subjects: int = 0,
    rng: np.random.Generator | int | Callable[[str], np.random.Generator] | None = None,
) -> Iterator[tuple[str, list[str], list[str]]]:
    """Leave-one-subject-out splits.

    Parameters
    ----------
    subjects : sequence of str
        All subjects, in dataset order.
    validation_subjects : int
        Training subjects held out per fold for validation.
    rng : Generator | int | None | callable
        Picks the validation subjects: one generator (or seed) shared by all folds, or a
        function mapping the test subject to that fold's generator.

    Yields
    ------
    test : str
        The held-out subject.
    train : list of str
        Training subjects, in dataset order; never contains ``test`` or a validation subject.
    val : list of str
        Validation subjects, in dataset order; never contains ``test``.
    """
    subjects = [str(s) for s in subjects]
    if len(set(subjects)) != len(subjects):
        raise ValueError(f"subjects must be unique, got {subjects}")
    if len(subjects) - 1 - validation_subjects < 1:
        raise TrainingError(
            f"{len(subjects)} subjects leave no training subject after holding out 1 test and "
            f"{validation_subjects} validation subject(s); lower training.validation_subjects "
            "or add subjects"
        )
    shared = None if callable(rng) else np.random.default_rng(rng)
    for test in subjects:
        rest = [s for s in subjects if s != test]
        val: list[str] = []
        if validation_subjects:
            gen = rng(test) if callable(rng) else shared
            picked = gen.choice(len(rest), size=validation_subjects, replace=False)
            val = [rest[i] for i in sorted(int(i) for i in picked)]
        train = [s for s in rest if s not in val]
        yield test, train, val


@dataclass(frozen=True)
class FoldSpec:
    """One fold: which subjects play which role, and its seeds."""

    repetition: int
    subject: str
    subject_index: int
    train_subjects: tuple[str, ...]
    val_subjects: tuple[str, ...]
    torch_seed: int
    seed: int

    @property
    def name(self) -> str:
        """File stem: ``rep{r:02d}_sub-{subject}`` (characters unsafe in file names -> _)."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.subject)
        return f"rep{self.repetition:02d}_sub-{safe}"


def _fold_specs(
    subjects: Sequence[str], config: TrainingConfig, repetitions: Iterable[int]
) -> list[FoldSpec]:
    thesis = config.protocol == "thesis"
    n_val = 0 if thesis else config.validation_subjects
    specs = []
    for rep in repetitions:
        seeds = {s: fold_seeds(config.seed, rep, s) for s in subjects}
        splits = loso_splits(subjects, n_val, lambda s, seeds=seeds: seeds[s][0])
        for k, (test, train, val) in enumerate(splits):
            torch_seed = rep * len(subjects) + k if thesis else seeds[test][2]
            specs.append(
                FoldSpec(rep, test, k, tuple(train), tuple(val), torch_seed, config.seed)
            )
    return specs


# --------------------------------------------------------------------------- one model
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
) -> dict[str, Any]:
    """Train ``model`` in place on already normalised windows.

    With validation data (and ``protocol: default``) training stops after ``patience``
    epochs without a better validation score (``config.monitor``: lower loss, or higher
    accuracy with ties broken by lower loss) and the best epoch's weights are restored;
    otherwise it runs ``max_epochs`` epochs and keeps the final weights.

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

    Returns
    -------
    dict
        ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``val_balanced_acc`` (per
        epoch; the training values are averages over the epoch's batches in training mode),
        ``epochs_trained``,
        ``best_epoch`` (1-based), ``stopped_early``.

    Notes
    -----
    Calls :func:`retain_freed_memory` (process-wide malloc thresholds; results unchanged).
    """
    config = config or TrainingConfig()
    thesis = config.protocol == "thesis"
    device = torch.device(device) if device is not None else resolve_device(config.device)
    retain_freed_memory()
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

    history: dict[str, Any] = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [],
                               "val_balanced_acc": []}
    best_epoch, best_state = 0, None
    best_score: tuple[float, float] = (float("inf"), float("inf"))
    stopped_early = False
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = None if thesis else torch.as_tensor(rng.permutation(n), device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for start in range(0, n, config.batch_size):
            batch = slice(start, start + config.batch_size)
            if order is None:
                xb, yb = xt[batch], yt[batch]
            else:
                xb, yb = xt[order[batch]], yt[order[batch]]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
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
        val_loss, val_acc, val_logits = _evaluate(model, xv, yv, val_criterion, eval_batch)
        val_bacc = _balanced_accuracy(yv, val_logits.argmax(1))
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        history["val_balanced_acc"].append(val_bacc)
        if config.monitor == "val_accuracy":
            # balanced, like the class-weighted loss: on imbalanced validation subjects plain
            # accuracy would favour epochs that predict the majority class
            score = (-val_bacc, val_loss)  # higher accuracy first, then lower loss
        else:
            score = (val_loss, 0.0)
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


# --------------------------------------------------------------------------- scores
def _balanced_accuracy(y: torch.Tensor, pred: torch.Tensor) -> float:
    """Mean recall over the classes present in ``y`` (= accuracy when classes are balanced)."""
    recalls = [int((pred[y == c] == c).sum()) / int((y == c).sum())
               for c in torch.unique(y).tolist()]
    # Rounded so that equal scores compare equal whatever the per-class split (k0/n + k1/n
    # differs from (k0 + k1)/n in the last bit); ties must go to the lower validation loss.
    return round(sum(recalls) / len(recalls), 12)


def fold_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, ROC AUC and confusion matrix of one test set.

    ROC AUC uses the probability of class 1 for two classes and one-vs-rest averaging for
    more; it is NaN when the test set holds a single class.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        roc_auc_score,
    )

    y_true = np.asarray(y_true)
    n_classes = proba.shape[1]
    y_pred = proba.argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: dict[str, Any] = {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        }
        try:
            if len(np.unique(y_true)) < 2:
                raise ValueError("single class")
            if n_classes == 2:
                auc = roc_auc_score(y_true, proba[:, 1])
            else:
                auc = roc_auc_score(
                    y_true, proba, multi_class="ovr", labels=list(range(n_classes))
                )
            out["roc_auc"] = float(auc)
        except ValueError:
            out["roc_auc"] = float("nan")
    out["confusion_matrix"] = confusion_matrix(
        y_true, y_pred, labels=list(range(n_classes))
    ).tolist()
    return out


def pooled_metrics(folds: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Scores of each repetition's pooled test predictions (the thesis' "iteration level")."""
    rows = []
    by_rep: dict[int, list[dict[str, Any]]] = {}
    for fold in folds:
        by_rep.setdefault(int(fold["repetition"]), []).append(fold)
    for rep, items in sorted(by_rep.items()):
        y_true = np.concatenate([f["predictions"]["y_true"] for f in items])
        proba = np.concatenate([np.asarray(f["predictions"]["proba"]) for f in items])
        scores = fold_metrics(y_true, proba)
        scores.pop("confusion_matrix")
        rows.append({"repetition": rep, "n_test": len(y_true), **scores})
    return pd.DataFrame(rows)


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, min and max of each score over all folds (the thesis' "subject level")."""
    cols = [c for c in METRICS if c in metrics]
    return metrics[cols].agg(["mean", "std", "min", "max"]).T


# --------------------------------------------------------------------------- files
def _versions() -> dict[str, str]:
    import sklearn

    versions = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "scikit-learn": str(sklearn.__version__),
    }
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        versions["eegcrp"] = str(version("eegcrp"))
    return versions


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Sequential, dict[str, Any]]:
    """Rebuild a trained fold model from its ``.pt`` checkpoint.

    Returns
    -------
    model : nn.Sequential
        In eval mode, on ``device``.
    meta : dict
        Everything else saved with it: ``ch_names``, ``sfreq``, ``n_times``, ``classes``,
        ``model_config``, ``training_config``, ``preprocessing_key``, ``normalization``
        (apply :func:`normalize_windows` with its ``ddof`` to the input windows),
        ``config_hash``, ``versions``, ``repetition``, ``test_subject`` and the fold's subjects
        and scores.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"checkpoint {path} does not exist; run `eegcrp train` first")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise TrainingError(
            f"checkpoint {path} cannot be read ({exc}); delete it and its .json and re-run "
            "training to retrain that fold"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(
            f"{path} is not an eegcrp checkpoint of format {CHECKPOINT_FORMAT}; retrain"
        )
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    model = build_model(
        ModelConfig.model_validate(meta["model_config"]),
        n_channels=len(meta["ch_names"]),
        n_times=int(meta["n_times"]),
        n_classes=len(meta["classes"]),
        sfreq=float(meta["sfreq"]),
    )
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), meta


# --------------------------------------------------------------------------- one fold
@contextlib.contextmanager
def _torch_settings(threads: int) -> Iterator[None]:
    """Thread count and deterministic algorithms for one fold; restored afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_bench = torch.backends.cudnn.benchmark
    old_cudnn_det = torch.backends.cudnn.deterministic
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.backends.cudnn.benchmark = old_bench
        torch.backends.cudnn.deterministic = old_cudnn_det


def _worker_threads() -> int:
    """Torch threads for a fold on a dask worker: its cores shared by its task threads."""
    try:
        from distributed import get_worker

        nthreads = get_worker().state.nthreads
    except Exception:
        nthreads = 1
    return max(1, _cpu_count() // max(1, nthreads))


def _run_fold(
    spec: FoldSpec,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    shape: dict[str, Any],
    model_config: ModelConfig,
    training_config: TrainingConfig,
    threads: int | None,
) -> dict[str, Any]:
    """Train and test one fold; returns its weights, history, scores and predictions."""
    threads = threads or _worker_threads()
    device = resolve_device(training_config.device)
    cuda = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    # fork_rng: seeding the fold leaves the caller's torch RNG state untouched
    with _FOLD_LOCK, _torch_settings(threads), torch.random.fork_rng(devices=cuda):
        start = time.perf_counter()
        idx_train = np.flatnonzero(np.isin(groups, spec.train_subjects))
        idx_val = np.flatnonzero(np.isin(groups, spec.val_subjects))
        torch.manual_seed(spec.torch_seed)
        model = build_model(
            model_config, shape["n_channels"], shape["n_times"], shape["n_classes"],
            shape["sfreq"],
        )
        _, rng, _ = fold_seeds(spec.seed, spec.repetition, spec.subject)
        history = train_model(
            model, x[idx_train], y[idx_train],
            x[idx_val] if len(idx_val) else None, y[idx_val] if len(idx_val) else None,
            config=training_config, rng=rng, n_classes=shape["n_classes"], device=device,
        )
        # The model is final: only now is the test subject looked at.
        idx_test = np.flatnonzero(groups == spec.subject)
        x_test = torch.as_tensor(x[idx_test], device=device)
        _, _, logits = _evaluate(model, x_test, None, None, max(training_config.batch_size, 1024))
        proba = torch.softmax(logits.double(), dim=1).cpu().numpy()
        y_test = y[idx_test]
        scores = fold_metrics(y_test, proba)
        wall = time.perf_counter() - start
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {
        "spec": spec,
        "state_dict": state,
        "history": history,
        "scores": scores,
        "n_train": len(idx_train),
        "n_val": len(idx_val),
        "n_test": len(idx_test),
        "y_true": y_test.tolist(),
        "proba": np.round(proba, 6).tolist(),
        "wall_time_s": wall,
        "device": str(device),
        "threads": threads,
    }


# --------------------------------------------------------------------------- the trainer
class LOSOTrainer:
    """Repeated leave-one-subject-out training of EEGNet (scikit-learn style).

    Parameters
    ----------
    model_config : ModelConfig | None
        Model hyper-parameters (default EEGNet-8,2).
    training_config : TrainingConfig | None
        Repetitions, epochs, protocol, parallelism and seed.

    Attributes
    ----------
    metrics_ : DataFrame
        One row per repetition x test subject (also ``metrics.csv``).
    folds_ : list of dict
        The fold records (the ``.json`` files) in repetition, subject order.
    run_dir_ : Path
        ``<out_dir>/training``.
    trained_, skipped_ : list of str
        Folds trained by this call and folds found finished and skipped.

    Examples
    --------
    >>> trainer = LOSOTrainer(cfg.model, cfg.training).fit(dataset, cfg.output_dir, key)
    >>> trainer.metrics_.groupby("test_subject").accuracy.mean()
    """

    def __init__(
        self,
        model_config: ModelConfig | None = None,
        training_config: TrainingConfig | None = None,
    ) -> None:
        self.model_config = model_config
        self.training_config = training_config

    # ------------------------------------------------------------------ helpers
    def _configs(self) -> tuple[ModelConfig, TrainingConfig]:
        return self.model_config or ModelConfig(), self.training_config or TrainingConfig()

    def fold_specs(self, subjects: Sequence[str]) -> list[FoldSpec]:
        """All folds (every repetition x subject) with their subjects and seeds."""
        _, tc = self._configs()
        return _fold_specs([str(s) for s in subjects], tc, range(tc.repetitions))

    @staticmethod
    def _run_record(dataset: Any, mc: ModelConfig, tc: TrainingConfig, key: str,
                    counts: dict[str, int]) -> dict[str, Any]:
        training = {
            k: v for k, v in tc.model_dump(mode="json").items() if k not in _NON_RESULT_FIELDS
        }
        identity = {
            "dataset": dataset.name,
            "subjects": [str(s) for s in dataset.subjects],
            "windows_per_subject": counts,
            "classes": list(dataset.classes),
            "ch_names": list(dataset.ch_names),
            "sfreq": float(dataset.sfreq),
            "n_times": int(dataset.n_times),
            "preprocessing_key": key,
            "model": mc.model_dump(mode="json"),
            "training": training,
        }
        return {"config_hash": config_hash(identity), **identity}

    def _prepare_dir(self, run_dir: Path, record: dict[str, Any], overwrite: bool) -> None:
        folds_dir = run_dir / "folds"
        run_file = run_dir / "run.json"
        if run_file.is_file() and not overwrite:
            try:
                old = json.loads(run_file.read_text())
            except (OSError, ValueError):
                old = {}
            if old.get("config_hash") not in (None, record["config_hash"]):
                raise TrainingError(
                    f"{run_dir} holds a training run of another configuration or data "
                    f"(hash {old.get('config_hash')}, this run {record['config_hash']}); "
                    "choose another output_dir or pass overwrite=True (CLI: --overwrite) to "
                    "discard it"
                )
        folds_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for item in list(folds_dir.iterdir()):
                if item.suffix in {".pt", ".json"}:
                    item.unlink()
            (run_dir / "metrics.csv").unlink(missing_ok=True)
        for item in folds_dir.glob(".*.tmp"):  # left by a killed run
            item.unlink(missing_ok=True)
        write_json_atomic(run_file, record)

    @staticmethod
    def _done(folds_dir: Path, spec: FoldSpec, run_hash: str) -> dict[str, Any] | None:
        js, pt = folds_dir / f"{spec.name}.json", folds_dir / f"{spec.name}.pt"
        if not (js.is_file() and pt.is_file()):
            return None
        try:
            record = json.loads(js.read_text())
        except (OSError, ValueError):
            return None
        return record if record.get("config_hash") == run_hash else None

    def _parallel(
        self, pending: list[FoldSpec], args: tuple, tc: TrainingConfig
    ) -> Iterator[dict[str, Any]]:
        """Run the pending folds serially or through joblib; yields results as they finish."""
        import joblib

        cores = _cpu_count()
        n_jobs = tc.n_jobs
        serial = tc.backend != "dask" or tc.dask_address is None
        if (n_jobs == 1 and serial) or (len(pending) == 1 and tc.backend == "loky"):
            threads = tc.threads or cores
            for spec in pending:
                yield _run_fold(spec, *args, threads)
            return
        tasks = lambda threads: (  # noqa: E731
            joblib.delayed(_run_fold)(spec, *args, threads) for spec in pending
        )
        ret = "generator_unordered"
        x, y = args[0], args[1]
        if tc.backend == "loky":
            n_eff = min(joblib.effective_n_jobs(n_jobs), len(pending))
            threads = tc.threads or max(1, cores // n_eff)
            with joblib.parallel_config(backend="loky", inner_max_num_threads=threads):
                yield from joblib.Parallel(n_jobs=n_eff, return_as=ret)(tasks(threads))
        elif tc.backend == "dask":
            with self._dask_client(tc, cores) as client:
                with joblib.parallel_config(backend="dask", client=client, scatter=[x, y]):
                    yield from joblib.Parallel(return_as=ret)(tasks(tc.threads))
        else:  # ray
            try:
                from ray.util.joblib import register_ray
            except ImportError as exc:
                raise TrainingError(
                    "training.backend is 'ray' but ray is not installed; install it with "
                    "pip install 'eegcrp[ray]' or use backend 'loky' or 'dask'"
                ) from exc
            register_ray()
            n_eff = cores if n_jobs < 1 else n_jobs
            threads = tc.threads or max(1, cores // min(n_eff, len(pending)))
            with joblib.parallel_config(backend="ray"):
                yield from joblib.Parallel(n_jobs=n_jobs, return_as=ret)(tasks(threads))

    @staticmethod
    @contextlib.contextmanager
    def _dask_client(tc: TrainingConfig, cores: int) -> Iterator[Any]:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise TrainingError(
                "training.backend is 'dask' but dask.distributed is not installed; install "
                "it with pip install 'eegcrp[dask]' or use backend 'loky'"
            ) from exc
        if tc.dask_address:
            logger.info("connecting to the dask scheduler at %s", tc.dask_address)
            client = Client(tc.dask_address, set_as_default=False)
            try:
                yield client
            finally:
                client.close()
            return
        workers = cores if tc.n_jobs < 1 else tc.n_jobs
        logger.info("starting a local dask cluster with %d worker process(es)", workers)
        with LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster, Client(cluster, set_as_default=False) as client:
            yield client

    def _save(
        self, folds_dir: Path, result: dict[str, Any], meta: dict[str, Any],
        mc: ModelConfig, tc: TrainingConfig,
    ) -> dict[str, Any]:
        spec: FoldSpec = result["spec"]
        history = result["history"]
        scores = dict(result["scores"])
        confusion = scores.pop("confusion_matrix")
        fold_info = {
            "repetition": spec.repetition,
            "test_subject": spec.subject,
            "subject_index": spec.subject_index,
            "seed": spec.torch_seed,
            "train_subjects": list(spec.train_subjects),
            "val_subjects": list(spec.val_subjects),
            "n_train": result["n_train"],
            "n_val": result["n_val"],
            "n_test": result["n_test"],
            "epochs_trained": history["epochs_trained"],
            "best_epoch": history["best_epoch"],
            "stopped_early": history["stopped_early"],
            "wall_time_s": round(result["wall_time_s"], 3),
            "device": result["device"],
            "threads": result["threads"],
        }
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "state_dict": result["state_dict"],
            **meta,
            **fold_info,
            "model_config": mc.model_dump(mode="json"),
            "training_config": tc.model_dump(mode="json"),
            "scores": nan_to_none(scores),
        }
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        write_bytes_atomic(folds_dir / f"{spec.name}.pt", buf.getvalue())
        record = {
            "format": CHECKPOINT_FORMAT,
            "config_hash": meta["config_hash"],
            **fold_info,
            **scores,
            "confusion_matrix": confusion,
            "classes": meta["classes"],
            "checkpoint": f"{spec.name}.pt",
            "history": {k: history[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc",
                                                "val_balanced_acc")},
            "predictions": {"y_true": result["y_true"], "proba": result["proba"]},
        }
        write_json_atomic(folds_dir / f"{spec.name}.json", record)  # last: marks the fold done
        return json.loads(json.dumps(nan_to_none(record)))

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        dataset: Any,
        out_dir: str | Path,
        preprocessing_key: str = "",
        progress: bool = True,
        overwrite: bool = False,
    ) -> LOSOTrainer:
        """Train every pending fold and collect all folds' metrics.

        Parameters
        ----------
        dataset : EEGDataset
            Windows of all subjects (volts; normalised here per window).
        out_dir : str | Path
            The study's output folder; results go to ``<out_dir>/training``.
        preprocessing_key : str
            Identifies the preprocessed data (stored in checkpoints and the run hash).
        progress : bool
            Show a progress bar over folds.
        overwrite : bool
            Discard an existing run in ``<out_dir>/training`` instead of resuming it.

        Returns
        -------
        self
        """
        from tqdm.auto import tqdm

        mc, tc = self._configs()
        dataset.validate(min_subjects=2)
        subjects = [str(s) for s in dataset.subjects]
        classes = list(dataset.classes)
        x, y, groups = dataset.get_data()
        groups = groups.astype(str)
        counts = {s: int(np.sum(groups == s)) for s in subjects}
        thesis = tc.protocol == "thesis"
        if thesis and tc.validation_subjects:
            logger.info("thesis protocol: no validation subjects (ignoring %d)",
                        tc.validation_subjects)
        ddof = 1 if thesis else 0
        x = normalize_windows(x, ddof=ddof)
        y = y.astype(np.int64)
        shape = {
            "n_channels": x.shape[1], "n_times": x.shape[2], "n_classes": len(classes),
            "sfreq": float(dataset.sfreq),
        }
        build_model(mc, **shape)  # fail early on windows too short for the model

        run_dir = Path(out_dir) / "training"
        folds_dir = run_dir / "folds"
        record = self._run_record(dataset, mc, tc, preprocessing_key, counts)
        run_hash = record["config_hash"]
        self._prepare_dir(run_dir, record, overwrite)
        meta = {
            "config_hash": run_hash,
            "dataset": dataset.name,
            "ch_names": list(dataset.ch_names),
            "sfreq": float(dataset.sfreq),
            "n_times": int(x.shape[2]),
            "classes": classes,
            "preprocessing_key": preprocessing_key,
            "normalization": {"method": "zscore_window", "axes": "channels x time",
                              "ddof": ddof},
            "versions": _versions(),
        }

        specs = self.fold_specs(subjects)
        done = {s.name: self._done(folds_dir, s, run_hash) for s in specs}
        pending = [s for s in specs if done[s.name] is None]
        self.skipped_ = [s.name for s in specs if done[s.name] is not None]
        self.trained_ = []
        logger.info(
            "LOSO training: %d subjects x %d repetition(s) = %d folds, %d already done, "
            "%d to train (protocol %s, backend %s, n_jobs %d)",
            len(subjects), tc.repetitions, len(specs), len(self.skipped_), len(pending),
            tc.protocol, tc.backend, tc.n_jobs,
        )
        args = (x, y, groups, shape, mc, tc)
        with tqdm(total=len(specs), initial=len(self.skipped_), desc="LOSO folds", unit="fold",
                  disable=not progress) as bar:
            for result in self._parallel(pending, args, tc):
                rec = self._save(folds_dir, result, meta, mc, tc)
                done[result["spec"].name] = rec
                self.trained_.append(result["spec"].name)
                logger.info(
                    "%s: accuracy %.3f, balanced %.3f (%d epochs, best %d, %.1f s)",
                    result["spec"].name, rec["accuracy"], rec["balanced_accuracy"],
                    rec["epochs_trained"], rec["best_epoch"], rec["wall_time_s"],
                )
                bar.update()

        self.folds_ = [done[s.name] for s in specs]
        columns = ["repetition", "test_subject", *METRICS, "n_train", "n_val", "n_test",
                   "epochs_trained", "best_epoch", "seed", "wall_time_s"]
        self.metrics_ = pd.DataFrame(
            [{c: f.get(c) for c in columns} for f in self.folds_], columns=columns
        ).astype({m: float for m in METRICS})
        write_bytes_atomic(run_dir / "metrics.csv", self.metrics_.to_csv(index=False).encode())
        self.run_dir_ = run_dir
        logger.info("wrote %s", run_dir / "metrics.csv")
        return self


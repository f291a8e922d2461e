"""Leave-one-subject-out (LOSO) training of EEGNet, repeated, resumable and parallel.

For each repetition ``r`` and each subject ``s`` a fold trains a fresh model on all other
subjects and tests it on ``s`` (:mod:`eegcrp.training.loop` trains one model):

* **Seeds.** Every fold derives its own seeds from ``(training.seed, r, s)`` through a
  :class:`numpy.random.SeedSequence`: one stream picks the validation subjects, one shuffles
  the batches, one seeds torch (weights, dropout). Folds are therefore independent of each
  other, of the order they run in, of ``n_jobs`` and of the backend. ``training.seed`` left
  null is the study's ``seed``.
* **Validation** (``validation_subjects`` > 0) uses whole *training* subjects, chosen by the
  fold's seed. The test subject is used only once, after the fold's model is final.
* **Determinism.** The same config and seed give the same weights and scores on the same
  machine, and the same checkpoint bytes: a checkpoint holds the weights and what decides
  them, never timings, threads or the device (those are in the fold's ``.json`` and
  ``metrics.csv``). The torch thread count and the device change the order of
  floating-point sums and so the numbers (BENCHMARKS.md); each fold records both.
* ``protocol: thesis`` reproduces the thesis' loop (no validation, fixed epochs, unshuffled,
  unweighted loss, ddof=1 z-score) with torch seed ``r * n_subjects + k`` for the k-th subject.

Files (in ``out_dir``): ``metrics.csv`` (one row per repetition x test subject) and per fold
``folds/rep{r:02d}_sub-{s}.pt`` (weights plus what is needed to use the model without the
config, see :func:`eegcrp.io.load_checkpoint`) and ``folds/rep{r:02d}_sub-{s}.json``
(metrics, learning curves, test predictions, the checkpoint's SHA-256, the stage identity
and the threads/device it ran with). Files are written atomically and the JSON last, so a
fold is done when its JSON names the current identity and its checkpoint matches the
recorded hash; anything else (a killed run, a truncated or replaced checkpoint) is trained
again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from eegcrp.config import ModelConfig, TrainingConfig
from eegcrp.config.stages import ParallelSection
from eegcrp.errors import TrainingError
from eegcrp.io import (
    nan_to_none,
    save_checkpoint,
    sha256_file,
    versions,
    write_csv_atomic,
    write_json_atomic,
)
from eegcrp.models import build_model
from eegcrp.parallel import dask_worker_threads, parallel_map
from eegcrp.stats import METRICS, fold_metrics

from .alignment import apply_maps, subject_maps
from .engine import FastEEGNet, engine_for, window_autocorrelation
from .loop import _evaluate, check_model_input, normalize_windows, resolve_device, train_model
from .selection import _inner_loop

logger = logging.getLogger(__name__)

__all__ = ["FOLD_FORMAT", "FoldSpec", "LOSOTrainer", "fold_seeds", "loso_splits", "run_fold",
           "subject_key", "training_settings"]

#: Version of the fold JSON layout.
FOLD_FORMAT = 2

# torch's global RNG is per process: folds sharing a process (threads of a dask worker) run
# one at a time so that each fold's seeds alone decide its result.
_FOLD_LOCK = threading.Lock()


def training_settings(config: TrainingConfig) -> dict[str, Any]:
    """The training settings that decide a fold's model (what a checkpoint records).

    Where and how folds run (``n_jobs``, ``backend``, ``dask_address``, ``threads``,
    ``device``) and how many repetitions the study has do not change a fold's result and are
    left out, so that the same fold gives the same checkpoint bytes however it was run.
    """
    skip = {*ParallelSection.model_fields, "repetitions"}
    return {k: v for k, v in config.model_dump(mode="json").items() if k not in skip}


# --------------------------------------------------------------------------- splits and seeds
def subject_key(subject: str) -> int:
    """A stable 64-bit integer of a subject id (seeds derive from it, not from order)."""
    return int.from_bytes(hashlib.sha256(str(subject).encode()).digest()[:8], "little")


def fold_seeds(seed: int, repetition: int, subject: str) -> tuple[
    np.random.Generator, np.random.Generator, int
]:
    """Seeds of one fold: (validation-split rng, batch-shuffle rng, torch seed)."""
    root = np.random.SeedSequence([int(seed), int(repetition), subject_key(subject)])
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
    inner = config.model_selection == "inner_cv"
    n_val = 0 if inner else config.n_validation(len(subjects) - 1)
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


def run_fold(
    spec: FoldSpec,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    trial: np.ndarray | None,
    shape: dict[str, Any],
    model_config: ModelConfig,
    training_config: TrainingConfig,
    autocorrelation: np.ndarray | None,
    threads: int | None,
) -> dict[str, Any]:
    """Train and test one fold; returns its weights, history, scores and predictions.

    ``autocorrelation``: the fast engine's per-window moments of ``x`` (computed once per
    study, :func:`eegcrp.training.engine.window_autocorrelation`), or None.
    """
    threads = threads or dask_worker_threads()
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
        inner = None
        if training_config.model_selection == "inner_cv" and \
                training_config.protocol != "thesis":
            inner = _inner_loop(spec, x, y, groups, shape, model_config, training_config,
                                device, autocorrelation)
        history = train_model(
            model, x[idx_train], y[idx_train],
            x[idx_val] if len(idx_val) else None, y[idx_val] if len(idx_val) else None,
            config=training_config, rng=rng, n_classes=shape["n_classes"], device=device,
            epochs=inner["epochs"] if inner else None,
            autocorrelation=autocorrelation[idx_train] if autocorrelation is not None else None,
        )
        if inner:
            history["inner"] = inner
        # The model is final: only now is the test subject looked at.
        idx_test = np.flatnonzero(groups == spec.subject)
        x_test = torch.as_tensor(x[idx_test], device=device)
        _, _, logits = _evaluate(engine_for(model, training_config.engine), x_test, None, None,
                                 max(training_config.batch_size, 1024))
        proba = torch.softmax(logits.double(), dim=1).cpu().numpy()
        y_test = y[idx_test]
        scores = fold_metrics(y_test, proba)
        trials = trial[idx_test] if trial is not None else None
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
        "trial": trials.tolist() if trials is not None else None,
        "proba": np.round(proba, 6).tolist(),
        "wall_time_s": wall,
        "device": str(device),
        "threads": threads,
        "torch": str(torch.__version__),
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
    trained_, skipped_ : list of str
        Folds trained by this call and folds found finished and skipped.

    Examples
    --------
    >>> trainer = LOSOTrainer(cfg.model, cfg.training).fit(dataset, "results/x/training")
    >>> trainer.metrics_.groupby("test_subject").accuracy.mean()
    """

    def __init__(
        self,
        model_config: ModelConfig | None = None,
        training_config: TrainingConfig | None = None,
    ) -> None:
        self.model_config = model_config
        self.training_config = training_config

    def _configs(self) -> tuple[ModelConfig, TrainingConfig]:
        tc = self.training_config or TrainingConfig()
        if tc.seed is None:  # outside a StudyConfig, which resolves it
            tc = tc.model_copy(update={"seed": 42})
        return self.model_config or ModelConfig(), tc

    def fold_specs(self, subjects: Sequence[str]) -> list[FoldSpec]:
        """All folds (every repetition x subject) with their subjects and seeds."""
        _, tc = self._configs()
        return _fold_specs([str(s) for s in subjects], tc, range(tc.repetitions))

    @staticmethod
    def fold_done(folds_dir: Path, spec: FoldSpec, identity: str) -> dict[str, Any] | None:
        """The fold's record if it is finished for ``identity`` and intact, else None."""
        js, pt = folds_dir / f"{spec.name}.json", folds_dir / f"{spec.name}.pt"
        if not js.is_file():
            return None
        try:
            record = json.loads(js.read_text())
        except (OSError, ValueError):
            logger.warning("%s is unreadable; training fold %s again", js, spec.name)
            return None
        if record.get("identity") != identity or record.get("format") != FOLD_FORMAT:
            return None
        expected = record.get("checkpoint_sha256", "")
        if not pt.is_file() or sha256_file(pt, len(expected) or 64) != expected:
            logger.warning("checkpoint %s is missing or does not match its recorded hash "
                           "(truncated or replaced); training fold %s again", pt, spec.name)
            return None
        return record

    def fit(
        self,
        dataset: Any,
        out_dir: str | Path,
        identity: str = "",
        progress: bool = True,
        on_fold: Callable[[dict[str, Any]], None] | None = None,
        extra_meta: dict[str, Any] | None = None,
    ) -> LOSOTrainer:
        """Train every pending fold and collect all folds' metrics.

        Parameters
        ----------
        dataset : EEGDataset
            Windows of all subjects (volts; normalised here per window).
        out_dir : str | Path
            Where ``metrics.csv`` and ``folds/`` go (the stage folder ``training/``).
        identity : str
            What produced these folds (the stage identity); finished folds are reused only
            when their record names the same identity.
        progress : bool
            Show a progress bar over folds.
        on_fold : callable | None
            Called with each newly finished fold's record (e.g. to update a manifest).
        extra_meta : dict | None
            Stored in every checkpoint (e.g. the channel positions and preprocessing key).

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
        trial = _trial_ids(dataset)
        thesis = tc.protocol == "thesis"
        if thesis and tc.validation_subjects:
            logger.info("thesis protocol: no validation subjects (ignoring %d)",
                        tc.validation_subjects)
        ddof = 1 if thesis else 0
        maps = subject_maps(x, groups, tc.alignment)
        x = normalize_windows(apply_maps(x, groups, maps), ddof=ddof)
        y = y.astype(np.int64)
        shape = {"n_channels": x.shape[1], "n_times": x.shape[2], "n_classes": len(classes),
                 "sfreq": float(dataset.sfreq)}
        check_model_input(mc, **shape, engine=tc.engine)  # fail early on too short windows
        resolve_device(tc.device)  # fail early on an absent CUDA device

        out_dir = Path(out_dir)
        folds_dir = out_dir / "folds"
        folds_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "identity": identity,
            "dataset": dataset.name,
            "ch_names": list(dataset.ch_names),
            "sfreq": float(dataset.sfreq),
            "n_times": int(x.shape[2]),
            "classes": classes,
            "normalization": {"method": "zscore_window", "axes": "channels x time",
                              "ddof": ddof},
            "alignment": {"method": tc.alignment,
                          "maps": {s: torch.as_tensor(m) for s, m in maps.items()}},
            "model_config": mc.model_dump(mode="json"),
            "training_config": training_settings(tc),
            "versions": versions(),
            **(extra_meta or {}),
        }
        specs = self.fold_specs(subjects)
        done = {s.name: self.fold_done(folds_dir, s, identity) for s in specs}
        pending = [s for s in specs if done[s.name] is None]
        self.skipped_ = [s.name for s in specs if done[s.name] is not None]
        self.trained_: list[str] = []
        logger.info(
            "LOSO training: %d subjects x %d repetition(s) = %d folds, %d already done, "
            "%d to train (protocol %s)", len(subjects), tc.repetitions, len(specs),
            len(self.skipped_), len(pending), tc.protocol,
        )
        # the fast engine's moments depend on the windows only, not on the fold: once per
        # study (8 bytes x kernel taps per window)
        net = engine_for(build_model(mc, **shape), tc.engine)
        auto = (window_autocorrelation(x, net.kernel).numpy()
                if pending and isinstance(net, FastEEGNet) else None)
        tasks = ((spec, x, y, groups, trial, shape, mc, tc, auto) for spec in pending)
        with tqdm(total=len(specs), initial=len(self.skipped_), desc="LOSO folds", unit="fold",
                  disable=not progress) as bar:
            for result in parallel_map(run_fold, tasks, tc, n_tasks=len(pending),
                                       scatter=[a for a in (x, y, auto) if a is not None],
                                       what="folds"):
                record = _save_fold(folds_dir, result, meta)
                done[result["spec"].name] = record
                self.trained_.append(result["spec"].name)
                logger.info(
                    "%s: accuracy %.3f, balanced %.3f (%d epochs, best %d, %.1f s)",
                    result["spec"].name, record["accuracy"], record["balanced_accuracy"],
                    record["epochs_trained"], record["best_epoch"], record["wall_time_s"],
                )
                if on_fold is not None:
                    on_fold(record)
                bar.update()

        self.out_dir_ = out_dir
        self.folds_ = [done[s.name] for s in specs]
        columns = ["repetition", "test_subject", *METRICS, "n_train", "n_val", "n_test",
                   "epochs_trained", "best_epoch", "seed", "wall_time_s", "threads", "device"]
        self.metrics_ = pd.DataFrame(
            [{c: f.get(c) for c in columns} for f in self.folds_], columns=columns
        ).astype({m: float for m in METRICS})
        write_csv_atomic(out_dir / "metrics.csv", self.metrics_)
        return self


def _trial_ids(dataset: Any) -> np.ndarray | None:
    """Trial id of every window (unique within its subject), None when not recorded."""
    parts = []
    for _, ep in dataset:
        meta = getattr(ep, "metadata", None)
        if meta is None or "trial" not in meta:
            return None
        parts.append(meta["trial"].to_numpy(np.int64))
    return np.concatenate(parts) if parts else None


def _save_fold(folds_dir: Path, result: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Write one fold's checkpoint, then its record (last: marks the fold done)."""
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
    }
    # where and how long it ran stays out of the checkpoint: the same fold trained again
    # gives the same bytes (and hash), so explanations of it stay valid
    ran = {"wall_time_s": round(result["wall_time_s"], 3), "device": result["device"],
           "threads": result["threads"], "torch": result["torch"]}
    digest = save_checkpoint(folds_dir / f"{spec.name}.pt", result["state_dict"],
                             {**meta, **fold_info, "scores": nan_to_none(scores)})
    record = {
        "format": FOLD_FORMAT,
        "identity": meta["identity"],
        "name": spec.name,
        **fold_info,
        **ran,
        **scores,
        "confusion_matrix": confusion,
        "classes": meta["classes"],
        "checkpoint": f"{spec.name}.pt",
        "checkpoint_sha256": digest,
        "history": {k: history[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc",
                                            "val_balanced_acc", "val_roc_auc")},
        "inner": history.get("inner"),
        "alignment": meta["alignment"]["method"],
        "predictions": {"y_true": result["y_true"], "proba": result["proba"],
                        "trial": result["trial"]},
    }
    write_json_atomic(folds_dir / f"{spec.name}.json", record)
    return json.loads(json.dumps(nan_to_none(record)))

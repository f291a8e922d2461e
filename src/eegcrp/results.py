"""The one way a finished stage's results are opened for reading.

Every results reader (:func:`eegcrp.open_relevance`, :func:`eegcrp.load_concepts`,
:func:`eegcrp.load_sources`, :func:`eegcrp.load_regions`) finds and verifies its stage
here, so they all check the same things with the same messages: the manifest exists and
belongs to the stage, the stage finished, it lists the products the reader needs, and
every listed product is still there with its recorded size (``hashes=True`` also compares
the SHA-256, as the stages do for their inputs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import StoreError

__all__ = ["EVALUATION_TABLES", "DecodingResults", "TrainingResults", "load_decoding",
           "load_evaluation", "load_training", "open_stage", "stage_folder_name"]


def stage_folder_name(stage: str) -> str:
    """The folder of ``stage`` inside a run folder (as the stage registry defines it)."""
    from .stages import STAGES

    if stage not in STAGES:
        raise StoreError(f"no stage {stage!r}; stages: {list(STAGES)}")
    return STAGES[stage].folder


def open_stage(run_dir: str | Path, stage: str, *, required: Sequence[str] = (),
               hashes: bool = False) -> tuple[Path, dict[str, Any]]:
    """The verified folder and manifest of a finished stage.

    Parameters
    ----------
    run_dir : str | Path
        The study's ``output_dir`` or the stage's own folder.
    stage : str
        The stage's name (``explain``, ``concepts`` ...).
    required : sequence of str
        Products (paths relative to the stage folder) the reader needs.
    hashes : bool
        Also compare every product's SHA-256 with the manifest (reads every byte).

    Returns
    -------
    folder : Path
        The stage folder.
    manifest : dict
        The manifest's content (``extra``, ``products``, ``config`` ...).

    Raises
    ------
    StoreError
        Naming the command that makes the results readable again.
    """
    from .stages.manifest import MANIFEST_NAME, Manifest

    folder = Path(run_dir)
    own = stage_folder_name(stage)
    if not (folder / MANIFEST_NAME).is_file() and (folder / own).is_dir():
        folder = folder / own
    again = f"`eegcrp {stage} CONFIG`"
    if not (folder / MANIFEST_NAME).is_file():
        raise StoreError(f"no {stage} results in {folder}; run {again} first")
    manifest = Manifest.read(folder)
    if manifest is None:
        raise StoreError(f"{folder / MANIFEST_NAME} is unreadable; re-run {again} "
                         "with --overwrite")
    if manifest.stage != stage:
        raise StoreError(f"{folder / MANIFEST_NAME} is the manifest of stage "
                         f"{manifest.stage!r}, not {stage}")
    if not manifest.complete:
        raise StoreError(f"the {stage} stage in {folder} did not finish; re-run {again} to "
                         "resume it")
    missing = [p for p in required if p not in manifest.products]
    problems = [f"{p} is not listed" for p in missing]
    problems += manifest.check_products(folder, hashes=hashes)
    if problems:
        raise StoreError(f"the {stage} results in {folder} are incomplete or changed since "
                         f"the stage ran ({'; '.join(problems[:5])}); re-run {again} with "
                         "--overwrite")
    data = asdict(manifest)
    data.pop("location")
    return folder, data


class TrainingResults:
    """The finished ``train`` stage: per-fold metrics, fold records and histories."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"TrainingResults({self.folder}: {len(self.names)} folds)"

    @property
    def names(self) -> list[str]:
        """Fold names in repetition, subject order."""
        extra = self.manifest["extra"]
        return list(extra.get("order") or extra.get("folds", {}))

    @property
    def folds(self) -> list[dict[str, Any]]:
        """Each fold's record (subjects, seeds, checkpoint file and hash, scores)."""
        recorded = self.manifest["extra"].get("folds", {})
        return [dict(recorded[name], name=name) for name in self.names]

    @property
    def metrics(self) -> pd.DataFrame:
        """``metrics.csv``: one row per fold (accuracy, balanced accuracy ...)."""
        return pd.read_csv(self.folder / "metrics.csv", dtype={"test_subject": str})

    def histories(self) -> list[dict[str, Any]]:
        """Each fold's training record (``folds/<fold>.json``: curves, best epoch ...)."""
        return [json.loads((self.folder / "folds" / f"{name}.json").read_text())
                for name in self.names]


def load_training(run_dir: str | Path) -> TrainingResults:
    """The results of the ``train`` stage (``<output_dir>/training`` or ``output_dir``)."""
    return TrainingResults(*open_stage(run_dir, "train", required=("metrics.csv",)))


class DecodingResults:
    """The finished ``decoding`` stage: per held-out subject, EEGNet's single models (mean
    over repetitions), their repetition ensemble and the same-fold baselines."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"DecodingResults({self.folder}: {list(self.summary['models'])})"

    @property
    def scores(self) -> pd.DataFrame:
        """``scores.csv``: one row per held-out subject and model."""
        return pd.read_csv(self.folder / "scores.csv", dtype={"subject": str})

    @property
    def summary(self) -> dict[str, Any]:
        """Per model the mean over subjects with its interval; EEGNet against the others."""
        return self.manifest["extra"]["summary"]

    def table(self, score: str = "balanced_accuracy") -> pd.DataFrame:
        """Subjects x models of one score."""
        return self.scores.pivot(index="subject", columns="model", values=score)


def load_decoding(run_dir: str | Path) -> DecodingResults:
    """The results of the ``decoding`` stage (``<output_dir>/decoding`` or ``output_dir``)."""
    return DecodingResults(*open_stage(run_dir, "decoding", required=("scores.csv",)))


#: The tables of the ``evaluate`` stage (``<name>.csv``).
EVALUATION_TABLES = ("aopc", "faithfulness", "curves", "conservation", "randomisation",
                     "ground_truth", "concept_ablation", "cluster_ground_truth")


def load_evaluation(run_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The tables of the ``evaluate`` stage, by name (empty for those not written:
    ground truth exists for simulated data only)."""
    folder, manifest = open_stage(run_dir, "evaluate")
    out = {}
    for name in EVALUATION_TABLES:
        path = folder / f"{name}.csv"
        listed = f"{name}.csv" in manifest["products"]
        out[name] = pd.read_csv(path) if listed and path.stat().st_size else pd.DataFrame()
    return out

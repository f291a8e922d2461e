"""Command-line and data set-up shared by the LOSO benchmarks (not a benchmark itself)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from eegcrp.config import StudyConfig, load_config
from eegcrp.data.base import EEGDataset
from eegcrp.preprocessing import prepare


def study_parser(doc: str | None) -> argparse.ArgumentParser:
    """Parser with the arguments every study benchmark takes: CONFIG, ``--out``, ``--set``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("config", help="study YAML (e.g. configs/bciciv2b.yaml)")
    parser.add_argument("--out", required=True, help="output folder whose cache holds the data")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override KEY=VALUE (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    return parser


def random_windows_parser(doc: str | None, *, channels: int,
                          threads: int) -> argparse.ArgumentParser:
    """Parser for benchmarks on random windows: their shape, count, batch size and threads."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--channels", type=int, default=channels)
    parser.add_argument("--times", type=int, default=384, help="samples per window")
    parser.add_argument("--windows", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=threads, help="torch threads")
    return parser


@dataclass
class Study:
    """A prepared study as the LOSO engine sees it."""

    config: StudyConfig
    dataset: EEGDataset
    x: np.ndarray  # windows in volts, (n_windows, n_channels, n_times)
    y: np.ndarray  # int64 labels
    groups: np.ndarray  # subject id of each window, str
    subjects: list[str]
    prepare_s: float  # wall time of prepare (reading the cache when it is warm)

    @property
    def shape(self) -> dict[str, Any]:
        """Keyword arguments of ``eegcrp.models.build_model`` for this data."""
        return {"n_channels": self.x.shape[1], "n_times": self.x.shape[2],
                "n_classes": len(self.dataset.classes), "sfreq": float(self.dataset.sfreq)}


def load_study(args: argparse.Namespace) -> Study:
    """Set torch's threads, load the config and prepare (or read from the cache) its windows."""
    torch.set_num_threads(args.threads)
    config = load_config(args.config, args.overrides, output_dir=args.out)
    t0 = time.perf_counter()
    dataset = prepare(config, progress=False)
    prepare_s = time.perf_counter() - t0
    x, y, groups = dataset.get_data()
    return Study(config, dataset, x, y.astype(np.int64), groups.astype(str),
                 [str(s) for s in dataset.subjects], prepare_s)

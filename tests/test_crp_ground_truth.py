"""End to end on simulated motor imagery: the explanation finds the planted effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegcrp.stages import require
from eegcrp.stages.prepare import load_prepared
from eegcrp.store import open_relevance
from tests.conftest import run_stages, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_relevance_falls_in_the_planted_band_and_channels(tmp_path) -> None:
    cfg = tiny_config(
        tmp_path,
        dataset={"n_subjects": 4, "n_trials": 40, "snr": 2.0, "weak_fraction": 0.0, "seed": 3,
                 "sfreq": 256, "trial_duration": 4.0, "effect_window": [0.5, 3.5]},
        preprocessing={"window": 2.0, "step": 0.5, "h_freq": 40.0},
        model={"kernel_length": 32},
        training={"max_epochs": 15, "batch_size": 32, "learning_rate": 0.002,
                  "validation_subjects": 0},
        explain={"composite": "EpsilonPlus"},
    )
    run_stages(cfg, "prepare", "train", "explain")
    truth = load_prepared(require("prepare", cfg)).info["ground_truth"]
    metrics = pd.read_csv(cfg.output_dir / "training" / "metrics.csv",
                          dtype={"test_subject": str})
    learned = metrics.loc[metrics["accuracy"] >= 0.65, "test_subject"].tolist()
    assert len(learned) >= 2, metrics  # the explanations below are of models that learned
    run = open_relevance(cfg.output_dir)
    rel = run.band_relevance({"low": (1.0, 7.0), "mu_beta": (8.0, 30.0), "high": (30.0, 40.0)})
    rel = rel.isel(fold=[i for i, s in enumerate(rel["subject"].values) if s in learned])
    # |relevance| per band and channel, summed over learned folds, classes and filters
    values = np.abs(rel).sum(("fold", "class", "filter"))  # channel x band
    band_share = values.sum("channel") / values.sum()
    assert float(band_share.sel(band="mu_beta")) > 0.6, band_share.values
    planted = {ch for effect in truth["contrasts"][0]["effects"] for ch in effect["channels"]}
    per_channel = values.sel(band="mu_beta")
    top = list(per_channel.sortby(per_channel, ascending=False)["channel"].values[:3])
    assert set(top) & planted, (top, planted)
    # the planted channels hold far more than their share of the mu/beta relevance
    planted_share = float(per_channel.sel(channel=sorted(planted)).sum() / per_channel.sum())
    n_channels = per_channel.sizes["channel"]
    assert planted_share > 3 * len(planted) / n_channels, (planted_share, planted)

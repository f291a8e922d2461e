"""End to end on simulated motor imagery: the explanation finds the planted effect."""

from __future__ import annotations

import numpy as np

from eegcrp.config import load_config
from eegcrp.crp import run_explain
from eegcrp.preprocessing import prepare
from eegcrp.store import load_relevance
from eegcrp.training import LOSOTrainer


def test_relevance_falls_in_the_planted_band_and_channels(tmp_path) -> None:
    cfg = load_config({
        "output_dir": str(tmp_path),
        "dataset": {"kind": "simulated", "paradigm": "motor_imagery", "n_subjects": 4,
                    "n_trials": 40, "channels": "10-20_19", "snr": 2.0, "weak_fraction": 0.0,
                    "seed": 3},
        "preprocessing": {"window": 2.0, "step": 0.5, "h_freq": 40.0},
        "model": {"kernel_length": 32},
        "training": {"repetitions": 1, "max_epochs": 15, "batch_size": 32,
                     "learning_rate": 0.002, "validation_subjects": 0, "threads": 1},
        "explain": {"composite": "EpsilonPlus", "device": "cpu"},
    })
    dataset = prepare(cfg, progress=False)
    truth = dataset.info["ground_truth"]
    metrics = LOSOTrainer(cfg.model, cfg.training).fit(dataset, tmp_path, progress=False).metrics_
    learned = metrics.loc[metrics["accuracy"] >= 0.65, "test_subject"].tolist()
    assert len(learned) >= 2, metrics  # the explanations below are of models that learned
    run_explain(cfg, dataset, progress=False)
    run = load_relevance(tmp_path)
    rel = run.band_relevance({"low": (1.0, 7.0), "mu_beta": (8.0, 30.0), "high": (30.0, 40.0)})
    folds = [i for i, name in enumerate(rel.coords["fold"]) if name.split("sub-")[1] in learned]
    # |relevance| per band and channel, summed over learned folds, classes and filters
    values = np.abs(rel.values[folds]).sum(axis=(0, 1, 2))  # channel x band
    band_share = values.sum(0) / values.sum()
    bands = list(rel.coords["band"])
    assert band_share[bands.index("mu_beta")] > 0.6, dict(zip(bands, band_share, strict=True))
    planted = {ch for effect in truth["contrasts"][0]["effects"] for ch in effect["channels"]}
    per_channel = values[:, bands.index("mu_beta")]
    channels = list(rel.coords["channel"])
    top = [channels[i] for i in np.argsort(per_channel)[::-1][:3]]
    assert set(top) & planted, (top, planted)
    # the planted channels hold far more than their share of the mu/beta relevance
    planted_share = per_channel[[channels.index(c) for c in planted]].sum() / per_channel.sum()
    assert planted_share > 3 * len(planted) / len(channels), (planted_share, planted)

"""End to end on simulated motor imagery: explanations of models that learned find the
planted effect, and the quality checks say they are faithful (thresholds measured on this
configuration; see the comments)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegcrp.stages import require
from eegcrp.stages.prepare import load_prepared
from eegcrp.store import open_relevance
from tests.helpers import run_stages, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """4 subjects x 40 trials of strong mu/beta desynchronisation; models that learn."""
    cfg = tiny_config(
        tmp_path_factory.mktemp("learned"),
        dataset={"n_subjects": 4, "n_trials": 40, "snr": 2.0, "weak_fraction": 0.0, "seed": 3,
                 "sfreq": 256, "trial_duration": 4.0, "effect_window": [0.5, 3.5]},
        preprocessing={"window": 2.0, "step": 0.5, "h_freq": 40.0},
        model={"kernel_length": 32},
        training={"max_epochs": 15, "batch_size": 32, "learning_rate": 0.002,
                  "validation_subjects": 0},
        explain={"composite": "EpsilonPlus"},
        evaluate={"composites": ["EpsilonPlus"], "baselines": ["gradient_x_input"],
                  "max_windows": 24, "max_steps": 6, "n_random": 2, "n_jobs": 1,
                  "randomisation_folds": 1, "shuffled_label_folds": 1},
    )
    run_stages(cfg, "prepare", "train", "explain")
    metrics = pd.read_csv(cfg.output_dir / "training" / "metrics.csv",
                          dtype={"test_subject": str})
    learned = metrics.loc[metrics["accuracy"] >= 0.65, "test_subject"].tolist()
    assert len(learned) >= 2, metrics  # the explanations below are of models that learned
    return cfg, learned


def test_relevance_falls_in_the_planted_band_and_channels(learned) -> None:
    cfg, subjects = learned
    truth = load_prepared(require("prepare", cfg)).info["ground_truth"]
    run = open_relevance(cfg.output_dir)
    rel = run.band_relevance({"low": (1.0, 7.0), "mu_beta": (8.0, 30.0), "high": (30.0, 40.0)})
    rel = rel.isel(fold=[i for i, s in enumerate(rel["subject"].values) if s in subjects])
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


def test_quality_checks_on_models_that_learned(learned) -> None:
    cfg, subjects = learned
    run_stages(cfg, "concepts", "evaluate")
    folder = cfg.output_dir / "evaluate"
    aopc = pd.read_csv(folder / "aopc.csv")
    names = {f"rep00_sub-{s}" for s in subjects}
    ok = aopc[aopc["fold"].isin(names) & (aopc["method"] == "lrp:EpsilonPlus")]
    by_domain = ok.groupby("domain")[["aopc_morf", "aopc_random", "abpc"]].mean()
    # removing the most relevant bands/channels first hurts the decision more than random
    for domain in ("bands", "channels"):
        assert by_domain.loc[domain, "aopc_morf"] > by_domain.loc[domain, "aopc_random"]
        assert by_domain.loc[domain, "abpc"] > 0
    cons = pd.read_csv(folder / "conservation.csv")
    assert (cons.loc[cons.method == "lrp:EpsilonPlus", "median"].between(0.9, 1.1)).all()
    rand = pd.read_csv(folder / "randomisation.csv")
    cascade = rand[rand.check == "cascade"].set_index("step")
    assert cascade.loc["trained", "heatmap_spearman"] == pytest.approx(1.0)
    assert cascade["heatmap_spearman"].iloc[-1] < 0.5  # fully re-drawn: little similarity
    assert (rand.check == "shuffled_labels").sum() == 1
    truth = pd.read_csv(folder / "ground_truth.csv")
    gt = truth[truth["fold"].isin(names) & (truth["method"] == "lrp:EpsilonPlus")].mean(
        numeric_only=True)
    # whole-model heatmaps of held-out windows: planted channels and band above chance
    assert gt["channel_share"] > 1.5 * gt["channel_chance"], gt
    assert gt["band_share"] > 1.5 * gt["band_chance"], gt
    assert gt["channel_auc"] > 0.7 and gt["bin_auc"] > 0.6, gt
    # concept level: removing a cluster's filters costs about its relevance share
    ablation = pd.read_csv(folder / "concept_ablation.csv")
    assert len(ablation) >= 4
    r = ablation[["relevance_share", "relative_drop"]].corr().iloc[0, 1]
    assert r > 0.3, ablation
    clusters = pd.read_csv(folder / "cluster_ground_truth.csv")
    assert (clusters["planted_channel_share"] > 2 * clusters["channel_chance"]).any(), clusters

"""The decoding stage: ensembles and baselines on a tiny study with two repetitions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eegcrp.results import load_decoding, load_training
from eegcrp.stats import fold_metrics
from tests.helpers import run_stages, tiny_config


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    config = tiny_config(tmp_path_factory.mktemp("decoding"), training={"repetitions": 2})
    run_stages(config, "prepare", "train", "decoding")
    return config


def test_scores_cover_every_subject_and_model(study):
    scores = load_decoding(study.output_dir).scores
    assert set(scores["model"]) == {"eegnet", "eegnet_ensemble", "logbp+lr", "ts+lr"}
    assert scores.groupby("model")["subject"].nunique().eq(3).all()


def test_single_model_row_is_the_train_stages_mean_over_repetitions(study):
    scores = load_decoding(study.output_dir).table("roc_auc")["eegnet"]
    metrics = load_training(study.output_dir).metrics
    expected = metrics.groupby("test_subject")["roc_auc"].mean()
    pd.testing.assert_series_equal(scores.sort_index(), expected.sort_index(),
                                   check_names=False, rtol=1e-12)


def test_ensemble_scores_the_mean_of_the_fold_files_probabilities(study):
    folder = study.output_dir / "training" / "folds"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    scores = load_decoding(study.output_dir).table("balanced_accuracy")["eegnet_ensemble"]
    for subject in scores.index:
        mine = [r for r in records if r["test_subject"] == subject]
        assert len(mine) == 2
        proba = np.mean([np.asarray(r["predictions"]["proba"]) for r in mine], axis=0)
        y = np.asarray(mine[0]["predictions"]["y_true"])
        assert scores[subject] == pytest.approx(fold_metrics(y, proba)["balanced_accuracy"])


def test_summary_states_intervals_and_paired_tests(study):
    summary = load_decoding(study.output_dir).summary
    assert summary["models"]["eegnet"]["n_subjects"] == 3
    assert set(summary["versus_eegnet"]) == {"eegnet_ensemble", "logbp+lr", "ts+lr"}
    test = summary["versus_eegnet"]["ts+lr"]
    assert test["test"] == "exact sign-flip" and 0 < test["p_eegnet_better"] < 1


def test_a_rerun_is_up_to_date_and_the_headline_choice_is_not_identity(study, capsys):
    from eegcrp.stages import expected_identity

    before = (study.output_dir / "decoding" / "scores.csv").read_bytes()
    run_stages(study, "decoding")
    assert (study.output_dir / "decoding" / "scores.csv").read_bytes() == before
    other = study.model_copy(deep=True)
    other.decoding.headline = "ensemble"
    assert expected_identity("decoding", other) == expected_identity("decoding", study)

"""Confound controls (eegcrp.controls): what each control changes, the paired comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eegcrp.controls import compare, control_config, declared_controls, frontal_edge
from eegcrp.errors import ConfigError
from tests.helpers import tiny_config

CHANNELS = ["Fp1", "Fpz", "AF7", "F7", "F3", "Fz", "F8", "C3", "Cz", "C4", "FT9", "O1"]


def test_frontal_edge_channels_by_name():
    assert frontal_edge(CHANNELS) == ["Fp1", "Fpz", "AF7", "F7", "F8", "FT9"]
    assert frontal_edge(["C3", "Cz", "C4"]) == []


def test_each_task_family_declares_its_controls(tmp_path):
    config = tiny_config(tmp_path)
    mi = {c.name: c for c in declared_controls(config, CHANNELS, "motor_imagery")}
    assert list(mi) == ["band", "channels", "time"]
    assert mi["band"].overrides == {"preprocessing.l_freq": 8.0, "preprocessing.h_freq": 30.0}
    assert mi["channels"].overrides["preprocessing.drop_channels"] == sorted(
        ["Fp1", "Fpz", "AF7", "F7", "F8", "FT9"])
    assert mi["time"].overrides == {"preprocessing.min_window_onset": 1.0}
    other = declared_controls(config, CHANNELS, "internal_attention")
    assert [c.name for c in other] == ["band", "channels"]
    assert other[0].description == "4-30 Hz only"
    # a control that would change nothing is declared with the reason it is not run
    skips = {c.name: c.skip for c in declared_controls(config, ["C3", "Cz", "C4"],
                                                        "motor_imagery")}
    assert skips == {"band": "", "channels": "the data have no frontal-edge channel",
                     "time": ""}
    config.preprocessing.l_freq, config.preprocessing.h_freq = 8.0, 30.0
    config.preprocessing.min_window_onset = 1.5
    skips = {c.name: c.skip for c in declared_controls(config, CHANNELS, "motor_imagery")}
    assert skips["band"] == "the study is band-passed to 8-30 Hz already"
    assert skips["time"] == "the study's windows start that late already"
    # named channels must exist
    config.controls.channels = ["Cz", "T9"]
    with pytest.raises(ConfigError, match=r"\['T9'\]"):
        declared_controls(config, CHANNELS, "motor_imagery")
    config.controls.band = (8.0, 70.0)
    with pytest.raises(ConfigError, match="Nyquist"):
        declared_controls(config, CHANNELS, "motor_imagery")


def test_a_control_config_runs_in_its_own_folder_with_the_study_cache(tmp_path):
    config = tiny_config(tmp_path / "run", controls={"enabled": True, "repetitions": 2})
    band = declared_controls(config, CHANNELS, "motor_imagery")[0]
    sub = control_config(config, band)
    assert sub.output_dir == tmp_path / "run" / "controls" / "band"
    assert sub.resolved_cache_dir() == config.resolved_cache_dir()
    assert (sub.preprocessing.l_freq, sub.preprocessing.h_freq) == (8.0, 30.0)
    assert sub.training.repetitions == 2 and not sub.controls.enabled
    assert sub.model == config.model and sub.dataset == config.dataset
    assert band.set_options() == ("--set preprocessing.l_freq=8.0 "
                                  "--set preprocessing.h_freq=30.0")


def _series(values):
    return pd.Series(values, index=[f"S{i}" for i in range(len(values))])


def test_compare_is_a_paired_test_over_common_subjects():
    study = _series([0.80, 0.85, 0.78, 0.90, 0.82, 0.84])
    control = _series([0.55, 0.52, 0.60, 0.50, 0.58, 0.53])
    per, rec = compare(study, control, chance=0.5)
    ref = stats.ttest_rel(control.to_numpy(), study.to_numpy())
    assert rec["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert rec["verdict"] == "removes most of the above-chance score" and rec["likely_confound"]
    assert rec["share_removed"] == pytest.approx((study.mean() - control.mean())
                                                 / (study.mean() - 0.5))
    np.testing.assert_allclose(per["change"], control - study)
    # same scores up to noise: no significant change; subjects only in one run left out
    noisy = _series([0.81, 0.84, 0.79, 0.9, 0.8, 0.85, 0.7])
    _, rec = compare(study, noisy, chance=0.5)
    assert rec["verdict"] == "no significant change" and rec["n_subjects"] == 6
    assert not rec["likely_confound"] and not rec["possible_confound"]
    # most of the score gone but inconsistently over few subjects: a possible confound
    _, rec = compare(_series([0.8, 0.9, 0.7]), _series([0.5, 0.9, 0.5]), chance=0.5)
    assert rec["verdict"].endswith("not significantly") and rec["possible_confound"]
    _, rec = compare(study, study + 0.05 + np.arange(6) / 100, chance=0.5)
    assert rec["verdict"] == "raises the score"
    _, rec = compare(_series([0.8, 0.7]), _series([0.5, 0.5]), chance=0.5)
    assert rec["verdict"] == "not testable"

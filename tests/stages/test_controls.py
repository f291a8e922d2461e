"""The controls stage on simulated studies: a planted blink confound that the band control
exposes and the summary names, a planted mu/beta effect that the controls keep."""

from __future__ import annotations

import pandas as pd
import pytest

from eegcrp.cli import main
from eegcrp.stages import Manifest
from eegcrp.stages.report import report_context
from tests.helpers import PLANTED, PLANTED_CHANNELS, run_stages, tiny_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls")
    out = {}
    for name, dataset in PLANTED.items():
        config = tiny_config(
            root / name, cache_dir=str(root / "cache"),
            dataset={"n_subjects": 6, "n_trials": 40, "channels": PLANTED_CHANNELS, **dataset},
            model={"kernel_length": 64},
            training={"max_epochs": 40, "patience": 40, "learning_rate": 0.003,
                      "batch_size": 32, "n_jobs": 1},
            controls={"enabled": True})
        run_stages(config, "prepare", "train", "controls")
        out[name] = config
    return out


def _summary(config) -> pd.DataFrame:
    return pd.read_csv(config.output_dir / "controls" / "summary.csv").set_index("control")


def test_the_band_control_exposes_a_planted_blink_confound(studies):
    s = _summary(studies["confound"])
    # measured: balanced accuracy 0.662 -> 0.513 at 8-30 Hz, 92 % of the above-chance
    # score removed (p = 0.11 over 6 subjects: a possible confound)
    assert s.loc["band", "study_score"] > 0.6
    assert s.loc["band", "share_removed"] > 0.7
    assert s.loc["band", "verdict"].startswith("removes most of the above-chance score")
    # 2-s trials hold no 2-s window starting 1 s after the cue: recorded, not fatal
    assert s.loc["time", "verdict"] == "not run" and "min_window_onset" in s.loc[
        "time", "reason"]
    subjects = pd.read_csv(studies["confound"].output_dir / "controls" / "subjects.csv")
    assert set(subjects["control"]) == {"band", "channels"} and len(subjects) == 12


def test_the_controls_keep_a_planted_mu_beta_effect(studies):
    s = _summary(studies["effect"])
    # measured: 0.646 -> 0.767 at 8-30 Hz (no significant change), 0.775 without the
    # frontal edge
    assert s.loc["band", "study_score"] > 0.6
    assert s.loc["band", "share_removed"] < 0.5
    assert not s.loc["band", "likely_confound"] and not s.loc["band", "possible_confound"]


def test_products_are_listed_and_a_rerun_is_up_to_date(studies, capsys):
    config = studies["confound"]
    manifest = Manifest.read(config.output_dir / "controls")
    assert "band/training/metrics.csv" in manifest.products
    assert not manifest.check_products(config.output_dir / "controls")
    before = (config.output_dir / "controls" / "manifest.json").stat().st_mtime_ns
    rc = main(["controls", str(config.output_dir / "config.yaml"), "--controls", "-q"])
    assert rc == 0, capsys.readouterr().err
    assert (config.output_dir / "controls" / "manifest.json").stat().st_mtime_ns == before


def test_the_summary_names_the_confound_and_the_rerun_command(studies):
    from eegcrp.report.summary_section import summary_headlines

    lines, _ = summary_headlines(report_context(studies["confound"]))
    text = " ".join(h.text for h, _ in lines)
    assert "Controls (the study retrained under each" in text
    assert "confound in what this control removes" in text
    assert "--set preprocessing.l_freq=8.0 --set preprocessing.h_freq=30.0" in text


def test_a_control_whose_windows_equal_the_studys_is_not_trained():
    from eegcrp.stages.controls import _same_windows

    def manifest(digests):
        return Manifest("prepare", "x", {}, extra={"digest_extra": {
            s: {"windows": w, "continuous": "c"} for s, w in digests.items()}})

    study = manifest({"B01": "a", "B02": "b"})
    assert _same_windows(study, manifest({"B01": "a", "B02": "b"}))
    assert not _same_windows(study, manifest({"B01": "a", "B02": "other"}))
    assert not _same_windows(study, manifest({"B01": "a"}))  # a subject dropped
    assert not _same_windows(manifest({}), manifest({}))


def test_controls_the_data_cannot_have_are_refused_before_anything_is_written(tiny_study,
                                                                              tmp_path):
    from eegcrp.errors import ConfigError
    from tests.helpers import copy_study

    config = copy_study(tiny_study, tmp_path / "run")
    config.controls.enabled = True
    config.controls.channels = ["Fp1", "T9"]
    with pytest.raises(ConfigError, match=r"controls.channels names \['T9'\]"):
        run_stages(config, "controls")
    assert not (config.output_dir / "controls").exists()

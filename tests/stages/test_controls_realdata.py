"""Real data: the EEGMMIDB band control reproduces the hand-made result of BENCHMARKS.md
section 8 (EEGNet 0.817 -> 0.555 at 8-30 Hz, 10 of 10 subjects), on the first 6 subjects."""

from __future__ import annotations

import pandas as pd
import pytest

from eegcrp.config import load_config
from tests.helpers import real_folder, run_stages

pytestmark = [pytest.mark.realdata, pytest.mark.slow,
              pytest.mark.usefixtures("one_torch_thread")]


def test_eegmmidb_band_control_removes_most_of_the_above_chance_score(tmp_path):
    folder = real_folder("eegmmidb_mi")
    config = load_config("configs/eegmmidb.yaml", [
        f"dataset.path={folder}", "dataset.subjects=[1, 2, 3, 4, 5, 6]",
        "training.repetitions=1", "controls.enabled=true", "controls.run=[band]"],
        output_dir=tmp_path)
    run_stages(config, "prepare", "train", "controls")
    band = pd.read_csv(tmp_path / "controls" / "summary.csv").set_index("control").loc["band"]
    subjects = pd.read_csv(tmp_path / "controls" / "subjects.csv")
    # measured (6 subjects, R = 1): balanced accuracy 0.795 -> 0.509 (p = 0.002, 97 % of the
    # above-chance score removed), lower in 6 of 6 subjects
    assert band["study_score"] > 0.7
    assert band["share_removed"] > 0.5 and band["change"] < 0
    assert (subjects["change"] < 0).sum() >= 5

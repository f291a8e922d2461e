from __future__ import annotations

import mne

from eegcrp.config import load_config
from eegcrp.report.ground_truth_section import add_ground_truth_section
from eegcrp.simulate import simulate
from tests.conftest import synthetic_dataset


def test_ground_truth_section_lists_effects_and_artefacts(tmp_path) -> None:
    cfg = load_config({"dataset": {"kind": "simulated", "n_subjects": 2, "n_trials": 4,
                                   "channels": "10-20_19"}})
    dataset, truth = simulate(cfg.dataset)
    report = mne.Report(verbose="error")
    add_ground_truth_section(report, cfg, dataset)
    report.save(tmp_path / "r.html", open_browser=False, verbose="error")
    html = (tmp_path / "r.html").read_text()
    assert "Planted effects and artefacts" in html and "Source patterns" in html
    for effect in truth.contrasts[0].effects:
        assert effect.name in html
    assert "blink" in html and "muscle_left" in html


def test_no_section_for_real_data(tmp_path) -> None:
    report = mne.Report(verbose="error")
    add_ground_truth_section(report, None, synthetic_dataset())
    assert report.get_contents()[0] == []

"""Ground-truth report section (simulated data only)."""

from __future__ import annotations

from types import SimpleNamespace

import mne

from eegcrp.stages.report import report_context
from tests.helpers import synthetic_dataset


def test_ground_truth_section_lists_effects_and_artefacts(tiny_study, tmp_path) -> None:
    from eegcrp.report.ground_truth_section import add_ground_truth_section

    ctx = report_context(tiny_study)
    truth = ctx.dataset.info["ground_truth"]
    report = mne.Report(verbose="error")
    add_ground_truth_section(report, ctx)
    report.save(tmp_path / "r.html", open_browser=False, verbose="error")
    html = (tmp_path / "r.html").read_text()
    assert "Planted effects and artefacts" in html and "Source patterns" in html
    for effect in truth["contrasts"][0]["effects"]:
        assert effect["name"] in html
    assert "blink" in html and "muscle_left" in html


def test_no_section_for_real_data() -> None:
    from eegcrp.report.ground_truth_section import add_ground_truth_section

    report = mne.Report(verbose="error")
    add_ground_truth_section(report, SimpleNamespace(dataset=synthetic_dataset()))
    assert report.get_contents()[0] == []

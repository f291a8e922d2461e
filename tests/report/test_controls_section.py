"""The controls' summary line (report/controls_section.py), from the stage's manifest."""

from __future__ import annotations

from types import SimpleNamespace

from eegcrp.report.controls_section import controls_headline


def _rec(name, **kw):
    base = {"control": name, "description": f"{name} desc", "options": f"--set {name}=1",
            "n_subjects": 10, "study_score": 0.817, "control_score": 0.538, "change": -0.279,
            "ci_low": -0.357, "ci_high": -0.2, "p": 2.2e-5, "share_removed": 0.88,
            "verdict": "removes most of the above-chance score", "likely_confound": True,
            "possible_confound": False}
    return {**base, **kw}


def test_likely_confound_first_with_the_rerun_options_and_missing_numbers_as_na():
    manifest = SimpleNamespace(extra={"score": "balanced_accuracy", "controls": [
        _rec("time", control_score=0.81, change=-0.007, p=None, ci_low=None, ci_high=None,
             share_removed=None, verdict="not testable", likely_confound=False),
        _rec("band"),
        {"control": "channels", "description": "without none", "verdict": "not run",
         "reason": "the data have no frontal-edge channel", "options": ""}]})
    text = controls_headline(manifest)
    assert text.startswith("Controls (the study retrained under each, balanced accuracy "
                           "paired over 10 held-out subjects)")
    assert text.index("band (band desc)") < text.index("time (time desc)")
    assert "88 % of the above-chance score removed" in text
    assert "likely confound in what this control removes" in text
    assert "<code>eegcrp run CONFIG --set band=1 --out OUT</code>" in text
    assert "p = n/a" in text and "95 % CI n/a to n/a" in text
    assert "channels not run (the data have no frontal-edge channel)" in text
    assert controls_headline(SimpleNamespace(extra={"skipped": "off"})) is None
    assert controls_headline(None) is None

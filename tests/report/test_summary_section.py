"""The report's summary lines for the sources and regions stages (from their manifests)."""

from __future__ import annotations

from types import SimpleNamespace

from eegcrp.report.summary_section import regions_headline, sources_headline


def _sources(brain, others, ci=0.95):
    rec = {"brain": brain, "n_subjects": 7,
           "top_non_brain": {k: [v, v - 0.01, v + 0.01] for k, v in others.items()}}
    return SimpleNamespace(extra={"summary": {"all": {"hard/positive": rec}}},
                           config={"sources": {"ci": ci}})


def test_sources_line_states_the_brain_share_and_warns_when_it_is_a_minority():
    low = sources_headline(_sources([0.26, 0.16, 0.38], {"eye": 0.19, "other": 0.41}))
    assert "<b>26 %</b>" in low and "16 %-38 %" in low and "7 subjects" in low
    assert low.index("other 41 %") < low.index("eye 19 %")  # largest first
    assert "not attributed to brain" in low
    high = sources_headline(_sources([0.8, 0.7, 0.9], {"eye": 0.1}))
    assert "<b>80 %</b>" in high and "not attributed" not in high
    assert "(90 % CI" in sources_headline(_sources([0.8, 0.7, 0.9], {}, ci=0.9))
    assert sources_headline(None) is None
    skipped = SimpleNamespace(extra={"skipped": "sources.enabled is false"}, config={})
    assert sources_headline(skipped) is None


def test_regions_line_lists_only_over_represented_cells_largest_first():
    cells = [{"region": "central_left", "band": "alpha", "excess": 0.02, "ratio": 1.2},
             {"region": "frontal_left", "band": "delta", "excess": 0.05, "ratio": 1.4},
             {"region": "parietal_right", "band": "beta", "excess": -0.03, "ratio": 0.7}]
    manifest = SimpleNamespace(extra={"alpha": 0.05, "significant": {
        "positive": {"left_hand": cells, "right_hand": []}}})
    text = regions_headline(manifest)
    assert text.index("frontal left delta (x1.40)") < text.index("central left alpha (x1.20)")
    assert "parietal right" not in text and "right_hand: none" in text
    empty = SimpleNamespace(extra={"alpha": 0.1, "significant": {"positive": {}}})
    assert "no region x band cell" in regions_headline(empty)
    assert regions_headline(None) is None

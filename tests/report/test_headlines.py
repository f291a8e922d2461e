"""The summary's lines (report/headlines.py): worded from the evidence, gated, sourced."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from eegcrp.report.headlines import (
    decoding_headline,
    faithfulness_headline,
    likely_confounds,
    regions_headline,
    sources_headline,
)


def _conditions(**failing):
    names = {"channels": True, "band": False, "reference": True, "samples": False,
             "decomposition": True}
    return [{"name": n, "required": r, "holds": n not in failing,
             "values": [failing.get(n, "ok")], "needed": "x", "failing": []}
            for n, r in names.items()]


def _sources(brain, others, ci=0.95, conditions=None):
    rec = {"brain": brain, "n_subjects": 7,
           "top_non_brain": {k: [v, v - 0.01, v + 0.01] for k, v in others.items()}}
    return SimpleNamespace(extra={"summary": {"all": {"hard/positive": rec}},
                                  "iclabel_conditions": conditions or _conditions()},
                           config={"sources": {"ci": ci}})


def test_sources_line_states_the_brain_share_and_warns_when_it_is_a_minority():
    low = sources_headline(_sources([0.26, 0.16, 0.38], {"eye": 0.19, "other": 0.41})).text
    assert "<b>26 %</b>" in low and "16 %-38 %" in low and "7 subjects" in low
    assert low.index("other 41 %") < low.index("eye 19 %")  # largest first
    assert "not attributed to brain" in low
    high = sources_headline(_sources([0.8, 0.7, 0.9], {"eye": 0.1}))
    assert "<b>80 %</b>" in high.text and "not attributed" not in high.text
    assert high.sources[0] == "sources/shares.csv"
    assert "(90 % CI" in sources_headline(_sources([0.8, 0.7, 0.9], {}, ci=0.9)).text
    assert sources_headline(None) is None
    skipped = SimpleNamespace(extra={"skipped": "sources.enabled is false"}, config={})
    assert sources_headline(skipped) is None


def test_sources_line_withholds_the_share_when_iclabel_conditions_fail():
    sparse = _sources([0.74, 0.6, 0.85], {}, conditions=_conditions(
        channels="4", reference="as recorded", band="1-30 Hz"))
    text = sources_headline(sparse).text
    assert "<b>not interpretable</b>" in text and "channels 4" in text
    assert "reference as recorded" in text and "<b>74 %</b>" not in text
    narrow = sources_headline(_sources([0.74, 0.6, 0.85], {}, conditions=_conditions(
        band="1-40 Hz"))).text
    assert "<b>74 %</b>" in narrow and "Labels less reliable: band 1-40 Hz" in narrow


def test_regions_line_lists_only_over_represented_cells_and_says_when_coverage_is_thin():
    cells = [{"region": "central_left", "band": "alpha", "excess": 0.02, "ratio": 1.2},
             {"region": "frontal_left", "band": "delta", "excess": 0.05, "ratio": 1.4},
             {"region": "parietal_right", "band": "beta", "excess": -0.03, "ratio": 0.7}]
    regions = {"frontal_left": 3, "central_left": 3, "parietal_right": 2, "occipital": 2,
               "temporal": 0}
    manifest = SimpleNamespace(extra={"alpha": 0.05, "layout": {"regions": regions},
                                      "significant": {"positive": {"left_hand": cells,
                                                                   "right_hand": []}}})
    text = regions_headline(manifest).text
    assert text.index("frontal left delta (x1.40)") < text.index("central left alpha (x1.20)")
    assert "parietal right" not in text and "right_hand: none" in text
    assert "covers only" not in text
    thin = SimpleNamespace(extra={"alpha": 0.1, "significant": {"positive": {}},
                                  "layout": {"regions": {"central": 2, "frontal": 2}}})
    assert "no region x band cell" in regions_headline(thin).text
    assert "covers only 2 scalp region(s)" in regions_headline(thin).text
    assert regions_headline(None) is None


def _cs(scores, threshold=0.6):
    metrics = pd.DataFrame([{"test_subject": f"S{k}", "repetition": r, "accuracy": v + r / 100}
                            for k, v in enumerate(scores) for r in range(2)])
    subjects = [f"S{k}" for k in range(len(scores))]
    return {"score": "accuracy", "metrics": metrics, "chance": 0.5,
            "threshold": pd.Series(threshold, index=subjects)}


def test_decoding_line_leads_with_failure_and_says_what_it_means():
    line, ev = decoding_headline(_cs([0.53, 0.46, 0.55, 0.49, 0.5]))
    assert ev.learned is False
    assert line.text.startswith("<b>The decoder did not learn the task</b>")
    assert "do not read it as a finding about the task" in line.text
    assert "95 % CI" in line.text and line.sources == ["training/metrics.csv"]
    good, ev = decoding_headline(_cs([0.75, 0.7, 0.8, 0.72]))
    assert ev.learned is True and "above chance across subjects" in good.text
    assert "4 of 4 held-out subjects above" in good.text
    few, ev = decoding_headline(_cs([0.9, 0.9]))
    assert ev.learned is None and "not testable" in few.text


def test_faithfulness_line_never_says_faithful_without_the_test():
    table = pd.DataFrame([
        {"method": "lrp:A", "domain": "channels", "n_subjects": 4, "aopc_morf": 0.01,
         "aopc_random": -0.0, "difference": 0.01, "ci_low": -0.02, "ci_high": 0.04,
         "d_z": 0.3, "p": 0.4, "alpha": 0.05, "min_dz": 0.5,
         "verdict": "indistinguishable from random"}])
    text = faithfulness_headline(table, pd.DataFrame(), "lrp:A").text
    assert "channels <b>indistinguishable from random</b>" in text
    assert "<b>faithful</b>" not in text and "p = 0.400" in text
    assert faithfulness_headline(table, pd.DataFrame(), "lrp:B") is None


def test_confounds_named_from_eye_components_and_frontal_edge_delta():
    sources = _sources([0.2, 0.1, 0.3], {"eye": 0.45, "muscle": 0.1})
    dominant = {"left": {"band": "delta", "channels": ["Fp1", "AF7", "Cz"], "share": 0.5},
                "right": {"band": "beta", "channels": ["C4"], "share": 0.4}}
    found = likely_confounds(sources, dominant)
    assert any(f.startswith("eye components carry more relevance (45 %)") for f in found)
    assert any("left: relevance peaks in delta at frontal-edge channels (Fp1, AF7)" in f
               for f in found)
    assert not any("muscle" in f or "right" in f for f in found)
    assert likely_confounds(None, None) == []


def test_dominant_band_shares_carry_an_interval_over_held_out_subjects(tiny_study):
    import numpy as np

    from eegcrp.report.headlines import dominant_bands, relevance_headline
    from eegcrp.store import open_relevance

    run = open_relevance(tiny_study.output_dir)
    dominant = dominant_bands(run)
    bands = run.band_relevance().clip(min=0).sum("filter")
    for cls, d in dominant.items():
        assert d["n_subjects"] == 3
        per = bands.sel({"class": cls}).sum("channel")
        shares = (per.sel(band=d["band"]) / per.sum("band")).values  # one fold per subject
        lo, hi = d["ci"]
        assert lo <= shares.mean() <= hi
        np.testing.assert_allclose((lo + hi) / 2, shares.mean())
    assert "95 % CI" in relevance_headline(dominant).text

"""The explanation-quality section: verdicts and figures from the evaluate stage's tables,
read through the results layer (synthetic tables of known content)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegcrp.config import load_config
from eegcrp.report import ReportContext
from eegcrp.report.quality_section import add_quality_section
from eegcrp.stages import Manifest
from eegcrp.stages.registry import stage_folders

DOMAINS = ("channels", "bands", "time")


def _aopc(morf: float, random: float, method: str = "lrp:EpsilonAlpha2Beta1") -> pd.DataFrame:
    rows = [{"fold": f"rep00_sub-S0{k}", "subject": f"S0{k}", "method": method, "domain": d,
             "n_windows": 8,
             "aopc_morf": morf + 0.01 * k, "aopc_lerf": -0.1, "aopc_random": random,
             "abpc": morf - random, "score_scale": 1.0} for k in range(3) for d in DOMAINS]
    return pd.DataFrame(rows)


@pytest.fixture
def context(tmp_path):
    """A run folder whose evaluate stage holds synthetic tables and a real manifest."""
    config = load_config({"dataset": {"kind": "simulated"}, "output_dir": str(tmp_path)})
    folder = tmp_path / "evaluate"
    folder.mkdir()
    curves = pd.DataFrame([{"fold": "f", "method": "lrp:EpsilonAlpha2Beta1", "domain": d,
                            "order": o, "removed": k, "fraction": k / 4, "score": s - k}
                           for d in DOMAINS for o, s in (("morf", 3), ("lerf", 5),
                                                         ("random", 4)) for k in range(5)])
    rand = pd.DataFrame([{"fold": "f", "check": "cascade", "step": s,
                          "heatmap_spearman": r, "topography_spearman": r}
                         for s, r in (("classifier", 0.8), ("b2_conv2", 0.3))])
    rng = np.random.default_rng(0)
    share = rng.uniform(0, 0.5, 12)
    ablation = pd.DataFrame({"fold": "f", "class": ["a", "b"] * 6, "cluster": "1",
                             "relevance_share": share, "relative_drop": share + 0.01})
    tables = {"aopc": _aopc(0.5, 0.2), "curves": curves, "randomisation": rand,
              "concept_ablation": ablation,
              "conservation": pd.DataFrame([{"fold": "f", "method": "lrp:EpsilonAlpha2Beta1",
                                             "n_windows": 8, "q05": 0.99, "median": 1.0,
                                             "q95": 1.01, "flagged": 0,
                                             "tolerance": 0.05}])}
    manifest = Manifest(stage="evaluate", identity="test", config={}, complete=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        manifest.add_product(folder, f"{name}.csv")
    manifest.write(folder)
    return ReportContext(config, None, {"evaluate": manifest},
                         folders=stage_folders(config))


def test_section_states_the_verdict_and_draws_every_check(context, tmp_path):
    import mne

    report = mne.Report(verbose="error")
    add_quality_section(report, context)
    report.save(tmp_path / "r.html", open_browser=False, overwrite=True, verbose="error")
    html = (tmp_path / "r.html").read_text()
    # the test over the three subjects, computed from aopc.csv (no faithfulness.csv here)
    assert "channels <b>faithful</b>" in html and "paired over 3 held-out subjects" in html
    assert "indistinguishable from random" in html  # the rule, stated under the verdicts
    for title in ("AOPC per method and domain", "Perturbation curves", "Conservation per "
                  "method", "Randomisation", "Concept-level faithfulness"):
        assert title in html
    assert html.count("data:image/png;base64") >= 4
    assert "Ground-truth recovery" not in html  # no ground truth table: not simulated here


def test_section_refuses_tables_changed_since_the_stage_ran(context):
    import mne

    from eegcrp.errors import StoreError

    path = context.folder("evaluate") / "aopc.csv"
    path.write_text(path.read_text() + "\n")
    with pytest.raises(StoreError, match=r"aopc\.csv has"):
        add_quality_section(mne.Report(verbose="error"), context)

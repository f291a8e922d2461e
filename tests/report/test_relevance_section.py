"""Concept relevance report section, on tiny real runs (prepare -> train -> explain)."""

from __future__ import annotations

import json
import re

import mne
import numpy as np
import pytest

from eegcrp.report import ReportContext, build_report
from eegcrp.report.relevance_section import add_relevance_section, summarise_relevance
from eegcrp.stages.registry import stage_folders
from eegcrp.stages.report import report_context
from eegcrp.store import open_relevance
from tests.helpers import copy_study, run_stages, tiny_config

TITLES = ("Concept relevance", "Explanation settings and conservation", "Relevance spectra",
          "Band relevance topographies", "Band power topographies")
#: Figures by filter index across folds are gone: filter k of two fold models is not the same
#: concept (the concepts section draws them per cluster).
GONE = ("Filter relevance ranking", "Input heatmaps of the top filters", "top 3 filters")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _n_raster(html: str) -> int:
    return len(re.findall(r"data:image/(?:png|webp);base64", html))


def n_images(html: str, tmp_path) -> int:
    """Figures embedded by the section: raster images (mne.Report writes PNG, or WebP where
    that is smaller) beyond those of an empty report (its logos)."""
    empty = _html(mne.Report(verbose="error"), tmp_path / "empty.html")
    return _n_raster(html) - _n_raster(empty)


def _html(report: mne.Report, path) -> str:
    report.save(path, open_browser=False, overwrite=True, verbose="error")
    return path.read_text()


def test_section_from_real_explain_run(tiny_study, tmp_path) -> None:
    report = mne.Report(verbose="error")
    add_relevance_section(report, report_context(tiny_study))
    html = _html(report, tmp_path / "r.html")
    for title in TITLES:
        assert title in html
    for title in GONE:
        assert title not in html
    assert n_images(html, tmp_path) == 3
    assert "per concept cluster" in html
    assert "EpsilonAlpha2Beta1" in html and "b2_conv2" in html
    assert "3 held-out subject(s) x 1 repetition(s)" in html
    assert "logit → layer" in html and "layer → input" in html


def test_aggregates_pool_the_selected_windows(tiny_study) -> None:
    run = open_relevance(tiny_study.output_dir)
    s = summarise_relevance(run)
    n_filters = s.n_selected.shape[1]
    # shares are normalised per fold and class
    assert np.allclose(np.nansum(np.abs(s.share), -1), 1.0)
    assert not hasattr(s, "ranking") and not hasattr(s, "top")  # no per-index ranking
    # spectra: means over the selected windows of every fold and every filter
    c = 1
    pooled = np.concatenate([fold.spectral_relevance(c, g).values for fold in run.folds
                             for g in range(n_filters)])
    assert np.allclose(s.all_filters(s.spectral)[c], pooled.mean(0), atol=1e-9)
    power = np.concatenate([fold.spectra(c, g).values ** 2 for fold in run.folds
                            for g in range(n_filters)])
    assert np.allclose(s.all_filters(s.power)[c], power.mean(0), rtol=1e-5)


def test_two_folds_three_channels(tmp_path) -> None:
    config = tiny_config(tmp_path, dataset={"n_subjects": 2, "channels": "c3cz_c4"},
                         training={"validation_subjects": 0})
    run_stages(config, "prepare", "train", "explain")
    report = mne.Report(verbose="error")
    ctx = report_context(config)
    add_relevance_section(report, ctx)
    html = _html(report, tmp_path / "r.html")
    assert ctx.dataset.ch_names == ["C3", "Cz", "C4"]
    for title in TITLES:
        assert title in html
    assert "2 held-out subject(s) x 1 repetition(s)" in html
    assert n_images(html, tmp_path) == 3
    assert "drawn as one bar per channel" in html  # 3 sites: no interpolated scalp map


def test_bars_per_channel_without_positions(tiny_study, tmp_path) -> None:
    config = copy_study(tiny_study, tmp_path / "copy")
    path = config.output_dir / "explain" / "manifest.json"
    manifest = json.loads(path.read_text())
    channels = manifest["extra"]["channels"]
    channels["positions"] = [None] * len(channels["positions"])
    path.write_text(json.dumps(manifest))
    report = mne.Report(verbose="error")
    add_relevance_section(report, ReportContext(config, report_context(tiny_study).dataset, {},
                                                  folders=stage_folders(config)))
    html = _html(report, tmp_path / "r.html")
    assert "Relevance spectra" in html
    # no scalp map is interpolated without positions: the band values are bars per channel
    assert "drawn as one bar per channel" in html and "Band power topographies" in html
    assert n_images(html, tmp_path) == 3


def test_no_section_without_explain_results(tiny_study, tmp_path) -> None:
    ctx = report_context(tiny_study)
    ctx.manifests.pop("explain")
    html = build_report(ctx, tmp_path / "r.html").read_text()
    assert "Classification" in html and "Concept relevance" not in html

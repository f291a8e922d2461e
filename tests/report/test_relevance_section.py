"""Concept relevance report section, on tiny real runs (simulate -> train -> explain)."""

from __future__ import annotations

import re

import mne
import numpy as np
import pytest
import torch

from eegcrp.config import load_config
from eegcrp.crp import run_explain
from eegcrp.report.relevance_section import add_relevance_section, summarise_relevance
from eegcrp.simulate import simulate
from eegcrp.store import load_relevance
from eegcrp.training import LOSOTrainer

TITLES = ("Concept relevance", "Explanation settings and conservation",
          "Filter relevance ranking", "Input heatmaps of the top filters", "Relevance spectra",
          "Band relevance topographies", "Band power topographies")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _study(root, channels, n_trials=12):
    """3 simulated subjects, 2-s windows at 128 Hz; one LOSO repetition of 2 epochs; CRP."""
    torch.set_num_threads(1)
    dataset = simulate({"kind": "simulated", "n_subjects": 3, "n_trials": n_trials,
                        "channels": channels, "sfreq": 128, "trial_duration": 2.0,
                        "effect_window": [0.25, 1.75]}, return_ground_truth=False)
    config = load_config({"dataset": {"kind": "simulated"}, "output_dir": str(root),
                          "training": {"repetitions": 1, "max_epochs": 2, "threads": 1},
                          "explain": {"device": "cpu"}})
    LOSOTrainer(config.model, config.training).fit(dataset, config.output_dir, progress=False)
    run_explain(config, dataset, progress=False)
    return config, dataset


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return _study(tmp_path_factory.mktemp("study8"),
                  ["Fz", "C3", "Cz", "C4", "P3", "Pz", "P4", "Oz"])


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


def test_section_from_real_explain_run(study, tmp_path) -> None:
    config, dataset = study
    report = mne.Report(verbose="error")
    add_relevance_section(report, config, dataset)
    html = _html(report, tmp_path / "r.html")
    for title in TITLES:
        assert title in html
    assert n_images(html, tmp_path) == 5
    assert "EpsilonAlpha2Beta1" in html and "b2_conv2" in html
    assert "3 held-out subject(s) x 1 repetition(s)" in html
    assert "logit → layer" in html and "layer → input" in html


def test_aggregates_pool_the_selected_windows(study) -> None:
    config, _ = study
    run = load_relevance(config.output_dir)
    s = summarise_relevance(run)
    n_classes, n_filters = s.n_selected.shape
    # shares are normalised per fold and class; the ranking sorts by |mean share|
    assert np.allclose(np.nansum(np.abs(s.share), -1), 1.0)
    key = np.abs(np.nanmean(s.share, 0))
    for c in range(n_classes):
        assert np.all(np.diff(key[c, s.ranking[c]]) <= 1e-12)
        assert sorted(s.ranking[c]) == list(range(n_filters))
        assert list(s.top[c]) == list(s.ranking[c][:3])  # all filters have selections here
    # heatmaps and spectra: means over the selected windows of every fold, read pair by pair
    c, f = 1, int(s.top[1, 0])
    heat = np.concatenate([fold.heatmaps(c, f).values for fold in run.folds])
    assert len(heat) == s.n_selected[c, f]
    assert np.allclose(s.heatmaps[1, 0], heat.mean(0), atol=1e-9)
    spec = np.concatenate([fold.spectral_relevance(c, f).values for fold in run.folds])
    assert np.allclose(s.spectral[c, f], spec.mean(0), atol=1e-9)
    pooled = np.concatenate([fold.spectral_relevance(c, g).values for fold in run.folds
                             for g in range(n_filters)])
    assert np.allclose(s.all_filters(s.spectral)[c], pooled.mean(0), atol=1e-9)
    power = np.concatenate([fold.spectra(c, g).values ** 2 for fold in run.folds
                            for g in range(n_filters)])
    assert np.allclose(s.all_filters(s.power)[c], power.mean(0), rtol=1e-5)


def test_one_fold_three_channels(tmp_path) -> None:
    config, dataset = _study(tmp_path, "c3cz_c4", n_trials=8)
    folds = sorted((tmp_path / "explain" / "folds").glob("*.h5"))
    for path in folds[1:]:  # keep a single fold (1 subject x 1 repetition)
        path.unlink()
    report = mne.Report(verbose="error")
    add_relevance_section(report, config, dataset)
    html = _html(report, tmp_path / "r.html")
    assert dataset.ch_names == ["C3", "Cz", "C4"]
    for title in TITLES:
        assert title in html
    assert "1 held-out subject(s) x 1 repetition(s)" in html
    assert n_images(html, tmp_path) == 5


def test_no_topomaps_without_positions(study, tmp_path) -> None:
    config, dataset = study
    plain = type(dataset)(dataset.name, {s: ep.copy().set_montage(None)
                                         for s, ep in dataset}, dataset.task)
    report = mne.Report(verbose="error")
    add_relevance_section(report, config, plain)
    html = _html(report, tmp_path / "r.html")
    assert "Relevance spectra" in html
    assert "Band relevance topographies" not in html
    assert n_images(html, tmp_path) == 3
    assert "Band power topographies" not in html


def test_no_section_without_results(study, tmp_path) -> None:
    _, dataset = study
    config = load_config({"dataset": {"kind": "simulated"}, "output_dir": str(tmp_path)})
    report = mne.Report(verbose="error")
    add_relevance_section(report, config, dataset)
    assert report.get_contents()[0] == []
    # an explain folder without fold files (e.g. a killed first fold) adds nothing either
    (tmp_path / "explain" / "folds").mkdir(parents=True)
    add_relevance_section(report, config, dataset)
    assert report.get_contents()[0] == []

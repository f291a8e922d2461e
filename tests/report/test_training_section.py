"""Classification report section, from verified training results."""

from __future__ import annotations

import mne
import numpy as np

from eegcrp.config import load_config
from eegcrp.data.base import EEGDataset, make_epochs
from eegcrp.report import ReportContext
from eegcrp.report.training_section import add_training_section
from eegcrp.stages import Manifest
from eegcrp.stages.registry import stage_folders
from eegcrp.stages.report import report_context
from eegcrp.training import LOSOTrainer


def _html(report: mne.Report, path) -> str:
    report.save(path, open_browser=False, overwrite=True, verbose="error")
    return path.read_text()


def test_section_from_real_training_results(tiny_study, tmp_path) -> None:
    report = mne.Report(verbose="error")
    add_training_section(report, report_context(tiny_study))
    html = _html(report, tmp_path / "r.html")
    for title in ("Summary", "Accuracy per test subject", "Accuracy per repetition",
                  "Confusion matrix", "Learning curves"):
        assert title in html
    assert "3 folds x 1 repetition(s)" in html


def _imbalanced_windowed(n_subjects: int = 3) -> EEGDataset:
    """Three 'rest' trials per 'task' trial, each cut into 4 windows (trial ids repeat)."""
    rng = np.random.default_rng(0)
    epochs = {}
    for k in range(n_subjects):
        labels = np.repeat(["rest", "rest", "rest", "task"] * 2, 4)
        sid = f"s{k:02d}"
        ep = make_epochs(rng.standard_normal((len(labels), 3, 128)) * 1e-5,
                         ch_names=("C3", "Cz", "C4"), sfreq=128.0, labels=list(labels),
                         event_id={"rest": 1, "task": 2}, subject=sid)
        meta = ep.metadata.copy()
        meta["trial"] = np.repeat(np.arange(8), 4)
        ep.metadata = meta
        epochs[sid] = ep
    return EEGDataset("imbalanced", epochs, "internal_attention", 50.0)


def test_section_judges_imbalanced_data_by_balanced_accuracy(tmp_path) -> None:
    ds = _imbalanced_windowed()
    cfg = load_config({"dataset": {"kind": "eegmat"}, "output_dir": str(tmp_path),
                       "training": {"repetitions": 1, "max_epochs": 1, "threads": 1}})
    trainer = LOSOTrainer(cfg.model, cfg.training).fit(ds, tmp_path / "training",
                                                      progress=False)
    train = Manifest("train", "x", {}, complete=True, extra={
        "folds": {f["name"]: f for f in trainer.folds_},
        "order": [f["name"] for f in trainer.folds_]})
    folder = tmp_path / "training"
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            train.add_product(folder, path.relative_to(folder).as_posix())
    train.write(folder)  # the section reads through the results layer, which verifies it
    prepare = Manifest("prepare", "y", {}, extra={"dataset": {"classes": ds.classes}})
    report = mne.Report(verbose="error")
    add_training_section(report, ReportContext(cfg, ds, {"prepare": prepare, "train": train},
                                                 folders=stage_folders(cfg)))
    html = _html(report, tmp_path / "r.html")
    assert "Balanced accuracy per test subject" in html
    assert "always predicting the majority class scores accuracy 0.75" in html
    assert "32 windows from 8 trials" in html

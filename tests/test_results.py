"""The results layer: every reader verifies its stage the same way (eegcrp.results)."""

from __future__ import annotations

import json

import pytest

import eegcrp
from eegcrp.errors import StoreError
from eegcrp.results import open_stage
from tests.helpers import copy_study

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def study(tiny_study, tmp_path):
    return copy_study(tiny_study, tmp_path / "run")


def test_a_finished_stage_opens_from_the_run_or_its_own_folder(study):
    out = study.output_dir
    folder, manifest = open_stage(out, "train")
    assert folder == out / "training" and manifest["stage"] == "train"
    assert open_stage(out / "training", "train")[0] == folder
    assert open_stage(out, "explain", hashes=True)[1]["complete"]


def test_training_results_through_the_layer(study):
    results = eegcrp.load_training(study.output_dir)
    assert results.names == ["rep00_sub-S01", "rep00_sub-S02", "rep00_sub-S03"]
    assert list(results.metrics["test_subject"]) == ["S01", "S02", "S03"]
    assert [f["name"] for f in results.folds] == results.names
    assert len(results.histories()) == 3


def test_missing_unfinished_foreign_or_changed_results_are_refused(study):
    out = study.output_dir
    with pytest.raises(StoreError, match=r"no concepts results .* run `eegcrp concepts CONFIG"):
        eegcrp.load_concepts(out)
    with pytest.raises(StoreError, match="no stage 'nope'"):
        open_stage(out, "nope")
    path = out / "training" / "manifest.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "complete": False}))
    with pytest.raises(StoreError, match="did not finish; re-run `eegcrp train CONFIG`"):
        eegcrp.load_training(out)
    path.write_text(json.dumps({**data, "stage": "explain"}))
    with pytest.raises(StoreError, match="manifest of stage 'explain', not train"):
        eegcrp.load_training(out / "training")
    path.write_text(json.dumps(data))
    metrics = out / "training" / "metrics.csv"
    metrics.write_text(metrics.read_text()[:-10])  # truncated
    with pytest.raises(StoreError, match=r"metrics.csv has \d+ bytes.*--overwrite"):
        eegcrp.load_training(out)


def test_a_same_size_replacement_is_found_by_the_hash_check(study):
    out = study.output_dir
    metrics = out / "training" / "metrics.csv"
    text = metrics.read_text()
    metrics.write_text(text.replace("S01", "S09", 1))
    open_stage(out, "train")  # sizes agree: the cheap check passes
    with pytest.raises(StoreError, match="does not match its recorded hash"):
        open_stage(out, "train", hashes=True)


def test_the_explain_reader_refuses_a_truncated_fold_file(study):
    fold = study.output_dir / "explain" / "folds" / "rep00_sub-S02.h5"
    fold.write_bytes(fold.read_bytes()[:1000])
    with pytest.raises(StoreError, match=r"rep00_sub-S02.h5 has 1000 bytes"):
        eegcrp.open_relevance(study.output_dir)

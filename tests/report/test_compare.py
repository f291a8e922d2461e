"""``eegcrp compare``: two small simulated studies side by side, unfinished folders refused."""

from __future__ import annotations

import json

import pytest

from eegcrp.report.compare import comparison_tests
from eegcrp.report.studies import read_study
from tests.helpers import copy_study, run_cli, run_stages, tiny_config


@pytest.fixture(scope="module")
def studies(tiny_study, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    first = copy_study(tiny_study, root / "first")
    run_stages(first, "decoding", "concepts", "regions")
    second = tiny_config(root / "second", seed=7, training={"repetitions": 2})
    run_stages(second, "prepare", "train", "decoding", "explain", "concepts")
    return first, second


def test_the_page_shows_both_studies(studies, tmp_path, capsys):
    first, second = studies
    page = tmp_path / "page.html"
    rc, out, _ = run_cli(capsys, "compare", str(first.output_dir), str(second.output_dir),
                         "--out", str(page), "--label", "one", "--label", "two")
    assert rc == 0 and "comparison of 2 studies" in out
    text = page.read_text()
    for needle in ("one", "two", "combined (2 studies)", "tangent space + LR",
                   "Decoding against chance and baselines", "Regions x bands: one",
                   "Concepts per class"):
        assert needle in text, needle
    assert "two: not run" in text  # no regions in the second study
    # both simulate the same recordings: the combined rows are flagged as not independent
    assert "Not independent" in text


def test_tests_per_study_and_combined(studies):
    s = [read_study(c.output_dir) for c in studies]
    table = comparison_tests(s)
    chance = table[table["comparison"] == "EEGNet vs chance"]
    assert list(chance["study"][:2]) == [s[0].label, s[1].label]
    assert chance["study"].iloc[-1] == "combined (2 studies)"
    assert chance["n"].iloc[-1] == 6
    assert s[1].repetitions == 2 and s[0].repetitions == 1
    # stability: not assessable with one repetition, assessed with two
    assert s[0].concepts_note and not s[1].concepts_note


def test_concepts_are_listed_stable_first(studies):
    table = read_study(studies[1].output_dir).concepts
    for _, part in table.groupby("class"):
        order = part["stable"].astype(object).map({True: 0, False: 2}).fillna(1).tolist()
        assert order == sorted(order)
    assert {"band", "channels", "region"} <= set(table.columns)


def test_an_unfinished_stage_is_refused(studies, tmp_path, capsys):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(studies[0].output_dir, folder)
    manifest = folder / "concepts" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["complete"] = False
    manifest.write_text(json.dumps(data))
    rc, _, err = run_cli(capsys, "compare", str(folder), "--out", str(tmp_path / "x.html"))
    assert rc == 2 and "the concepts stage" in err and "did not finish" in err
    assert not (tmp_path / "x.html").exists()
    rc, _, err = run_cli(capsys, "compare", str(folder), "--out", str(tmp_path / "x.html"),
                         "--label", "a", "--label", "b")
    assert rc == 2 and "2 labels for 1 studies" in err


def test_a_study_without_decoding_names_the_stage_to_run(tiny_study, tmp_path):
    from eegcrp.errors import StoreError

    with pytest.raises(StoreError, match="eegcrp decoding"):
        read_study(tiny_study.output_dir)
    with pytest.raises(StoreError, match="not a folder"):
        read_study(tmp_path / "nothing")

"""Stage manifests (eegcrp.stages.manifest) and identities (eegcrp.stages.registry)."""

from __future__ import annotations

import json

from eegcrp.stages import STAGES, expected_identity
from eegcrp.stages.manifest import Manifest, config_diff, stale_files
from eegcrp.stages.registry import stage_sections
from tests.helpers import tiny_config


def test_manifest_round_trip_and_digest(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    m = Manifest(stage="x", identity="abc", config={"s": {"k": 1}})
    m.start(threads=1)
    m.add_product(tmp_path, "a.txt")
    m.finish()
    m.write(tmp_path)
    back = Manifest.read(tmp_path)
    assert back is not None and back.complete and back.products == m.products
    assert back.digest == m.digest
    assert json.loads((tmp_path / "manifest.json").read_text())["digest"] == m.digest
    assert back.timings["wall_time_s"] >= 0 and "versions" in back.environment
    assert back.check_products(tmp_path) == []
    (tmp_path / "a.txt").write_text("hellO")  # same size, other content
    assert "does not match its recorded hash" in back.check_products(tmp_path)[0]
    (tmp_path / "a.txt").write_text("hi")
    assert "truncated or replaced" in back.check_products(tmp_path)[0]
    (tmp_path / "a.txt").unlink()
    assert back.check_products(tmp_path) == ["a.txt is missing"]
    other = Manifest(stage="x", identity="abc", config={}, products={"a.txt": {"sha256": "0"}})
    assert other.digest != m.digest


def test_unreadable_manifest_counts_as_not_run(tmp_path):
    (tmp_path / "manifest.json").write_text("{broken")
    assert Manifest.read(tmp_path) is None
    assert Manifest.read(tmp_path / "nowhere") is None


def test_stale_files_are_the_unlisted_ones(tmp_path):
    (tmp_path / "folds").mkdir()
    for name in ("folds/a.pt", "folds/b.pt", "metrics.csv", ".tmp-x"):
        (tmp_path / name).write_text("x")
    m = Manifest(stage="x", identity="i", config={})
    m.add_product(tmp_path, "folds/a.pt")
    m.add_product(tmp_path, "metrics.csv")
    m.write(tmp_path)
    assert [p.name for p in stale_files(tmp_path, m)] == ["b.pt"]


def test_config_diff_names_both_values():
    lines = config_diff({"training": {"learning_rate": 0.001, "seed": 1}},
                        {"training": {"learning_rate": 0.01, "seed": 1}})
    assert lines == ["training.learning_rate: 0.001 in the run folder, 0.01 in this config"]
    assert len(config_diff({"a": list(range(30))}, {"a": 1}, limit=3)) == 1


def test_identities_follow_the_result_settings_only(tmp_path):
    base = tiny_config(tmp_path)
    ids = {name: expected_identity(name, base) for name in STAGES}
    assert len(set(ids.values())) == len(ids)

    def changed(**sections):
        cfg = tiny_config(tmp_path, **sections)
        return {name for name in STAGES if expected_identity(name, cfg) != ids[name]}

    # parallelism, device and batch sizes never change results
    assert changed(training={"n_jobs": 2, "threads": 2, "device": "cpu"},
                   explain={"n_jobs": 2, "batch_size": 5, "threads": 2},
                   evaluate={"threads": 2}) == set()
    # repetitions add folds to the same run (resume), they do not make another one
    assert changed(training={"repetitions": 3}) == set()
    # a setting changes its stage and every stage that reads it
    downstream = {"concepts", "sources", "regions", "evaluate"}
    assert changed(training={"learning_rate": 0.01}) == {"train", "decoding", "explain",
                                                         "controls", *downstream}
    assert changed(decoding={"C": 1.0}) == {"decoding"}
    assert changed(decoding={"headline": "ensemble"}) == set()  # report only
    assert changed(explain={"share": 0.5}) == {"explain", *downstream}
    assert changed(concepts={"descriptor": ["spectral"]}) == {"concepts", "sources", "evaluate"}
    assert changed(concepts={"power_display": "linear", "atlas_windows": 5}) == set()  # report
    assert changed(evaluate={"n_random": 5}) == {"evaluate"}
    assert changed(sources={"n_jobs": 1, "threads": 2}, regions={"alpha": 0.05}) == set()
    assert changed(sources={"n_boot": 500}) == {"sources"}
    assert changed(regions={"test": "wilcoxon"}) == {"regions"}
    assert changed(controls={"band": [8, 30]}) == {"controls"}
    assert changed(controls={"enabled": True}) == set()  # switching them on runs them
    assert changed(preprocessing={"l_freq": 8.0}) >= {"prepare", "train", "explain"}
    # the study seed is every stage seed left null
    assert "concepts" in changed(seed=7)  # concepts.seed (UMAP) takes the study seed
    assert changed(seed=7) >= {"prepare", "train", "explain"}
    assert tiny_config(tmp_path, seed=7).training.seed == 7
    assert tiny_config(tmp_path, seed=7, training={"seed": 3}).training.seed == 3
    assert tiny_config(tmp_path, seed=7).sources.seed == 7 == tiny_config(
        tmp_path, seed=7).regions.seed


def test_stage_sections_leave_out_non_result_fields(tmp_path):
    sections = stage_sections(STAGES["train"], tiny_config(tmp_path))
    assert set(sections) == {"model", "training"}
    assert "n_jobs" not in sections["training"] and "repetitions" not in sections["training"]
    assert "learning_rate" in sections["training"]
    assert "cache_key" in stage_sections(STAGES["prepare"], tiny_config(tmp_path))

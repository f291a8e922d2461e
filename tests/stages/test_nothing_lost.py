"""Nothing lost: a refused or failed command changes nothing, and the next corrected command
runs without ``--overwrite``.

Each test is a case a user met: ``--overwrite`` with a setting that is then refused, a stage
that failed (or was killed) before it produced anything, a killed ``--overwrite``.
"""

from __future__ import annotations

import pytest

from eegcrp.stages import Manifest
from eegcrp.stages.registry import _replaced, stage_folder
from tests.helpers import files_in, run_cli, write_yaml

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def study(tiny_study, tmp_path):
    from tests.helpers import copy_study

    config = copy_study(tiny_study, tmp_path / "run")
    return config, write_yaml(config, tmp_path / "tiny.yaml")


def _snapshot(folder):
    return {p: (folder / p).read_bytes() for p in files_in(folder)}


@pytest.mark.parametrize(("stage", "setting", "message"), [
    ("explain", "explain.device=cuda:3", "CUDA device is not available"),
    ("train", "training.device=cuda:3", "CUDA device is not available"),
    ("train", "training.validation_subjects=5", "leave no training subject"),
])
def test_refused_overwrite_keeps_every_result(study, capsys, stage, setting, message):
    import torch

    if "cuda" in setting and torch.cuda.device_count() > 3:
        pytest.skip("that CUDA device exists here")
    config, cfg = study
    out = config.output_dir
    before = {name: _snapshot(out / name) for name in ("training", "explain")}
    saved = (out / "config.yaml").read_bytes()
    rc, _, err = run_cli(capsys, stage, cfg, "--overwrite", "--set", setting)
    assert rc == 2 and message in err
    assert {name: _snapshot(out / name) for name in ("training", "explain")} == before
    assert (out / "config.yaml").read_bytes() == saved
    rc, stdout, _ = run_cli(capsys, "explain", cfg)
    assert rc == 0 and "explained 0 fold(s), 3 already done" in stdout


def test_failed_stage_does_not_block_the_corrected_config(tiny_study, tmp_path, capsys):
    config = tiny_study.model_copy(update={"output_dir": tmp_path / "x",
                                           "cache_dir": tiny_study.resolved_cache_dir()})
    cfg = write_yaml(config, tmp_path / "t.yaml")
    rc, _, err = run_cli(capsys, "train", cfg, "--set", "training.validation_subjects=5")
    assert rc == 2 and "leave no training subject" in err
    assert not (tmp_path / "x" / "training").exists()
    # a run that failed inside the stage leaves an unfinished manifest listing nothing
    folder = tmp_path / "x" / "training"
    folder.mkdir()
    Manifest(stage="train", identity="another", config={"training": {"seed": 1}}).write(folder)
    rc, _, _ = run_cli(capsys, "train", cfg)
    assert rc == 0
    manifest = Manifest.read(folder)
    assert manifest.complete and len(manifest.extra["order"]) == 3


def test_train_resumes_an_automatic_prepare_that_was_killed(tiny_study, tmp_path, capsys):
    config = tiny_study.model_copy(update={"output_dir": tmp_path / "x",
                                           "cache_dir": tiny_study.resolved_cache_dir()})
    cfg = write_yaml(config, tmp_path / "t.yaml")
    rc, _, _ = run_cli(capsys, "prepare", cfg)
    assert rc == 0
    folder = stage_folder(config, "prepare")
    killed = Manifest.read(folder)
    killed.complete, killed.products = False, {}  # as written when prepare started
    killed.write(folder)
    (folder / "summary.csv").unlink()
    rc, _, _ = run_cli(capsys, "train", cfg)
    assert rc == 0 and Manifest.read(folder).complete


def test_failure_during_overwrite_puts_the_old_results_back(study, capsys, monkeypatch):
    from eegcrp.stages import STAGES

    config, cfg = study
    out = config.output_dir
    before = _snapshot(out / "explain")

    def broken(ctx):
        (ctx.folder / "partial.txt").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setitem(STAGES, "explain", STAGES["explain"].__class__(
        **{**STAGES["explain"].__dict__, "run": broken}))
    rc, _, _ = run_cli(capsys, "explain", cfg, "--overwrite")
    assert rc == 130
    assert _snapshot(out / "explain") == before
    assert not _replaced(out / "explain").exists()


def test_results_a_killed_overwrite_replaced_are_removed_by_the_next_run(study, capsys):
    config, cfg = study
    out = config.output_dir
    aside = _replaced(out / "explain")
    aside.mkdir()
    (aside / "old.h5").write_bytes(b"old")
    rc, _, _ = run_cli(capsys, "explain", cfg)
    assert rc == 0 and not aside.exists()

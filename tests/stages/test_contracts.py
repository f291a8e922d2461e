"""The stage contract, end to end through the command line: every stage checks what it reads.

Each test reproduces a way a result could silently come from something other than what the
run folder says, and checks that it now fails loudly (exit status 2, a message naming the
fix, nothing half-written) or is recomputed.
"""

from __future__ import annotations

import json
import shutil

import pytest

from eegcrp.cli import main
from eegcrp.stages import STAGES, Manifest
from tests.helpers import copy_study, files_in, run_cli, write_yaml

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def study(tiny_study, tmp_path):
    """A private copy of the tiny study (prepare, train, explain done) and its YAML."""
    config = copy_study(tiny_study, tmp_path / "run")
    return config, write_yaml(config, tmp_path / "tiny.yaml")


def test_rerun_is_up_to_date_and_reuses_everything(study, capsys):
    config, cfg = study
    out = config.output_dir
    h5 = out / "explain" / "folds" / "rep00_sub-S01.h5"
    stamp = h5.stat().st_mtime_ns
    rc, stdout, _ = run_cli(capsys, "explain", cfg)
    assert rc == 0 and "explained 0 fold(s), 3 already done" in stdout
    assert h5.stat().st_mtime_ns == stamp


def test_explain_refuses_data_of_another_preprocessing(study, capsys):
    config, cfg = study
    out = config.output_dir
    before = files_in(out / "explain")
    rc, _, err = run_cli(capsys, "explain", cfg, "--set", "preprocessing.l_freq=8",
                      "--set", "preprocessing.car=false")
    assert rc == 2
    assert "preprocessing.l_freq: 1.0 in the run folder, 8.0 in this config" in err
    assert "preprocessing.car: true in the run folder, false in this config" in err
    assert "re-run `eegcrp prepare CONFIG`" in err
    assert files_in(out / "explain") == before
    # --overwrite replaces a stage's own results; it never accepts another config's inputs
    rc, _, err = run_cli(capsys, "explain", cfg, "--overwrite", "--set", "preprocessing.l_freq=8")
    assert rc == 2 and "another configuration" in err
    # the right config still finds its own, untouched results
    rc, stdout, _ = run_cli(capsys, "explain", cfg)
    assert rc == 0 and "3 already done" in stdout


def test_refused_stage_leaves_config_yaml_unchanged(study, capsys):
    config, cfg = study
    saved = (config.output_dir / "config.yaml").read_text()
    rc, _, err = run_cli(capsys, "train", cfg, "--set", "training.learning_rate=0.01")
    assert rc == 2
    assert "training.learning_rate: 0.001 in the run folder, 0.01 in this config" in err
    assert "Pass --overwrite" in err
    assert (config.output_dir / "config.yaml").read_text() == saved
    # an explain config that differs from the trained models' is refused the same way
    rc, _, err = run_cli(capsys, "explain", cfg, "--set", "training.learning_rate=0.01")
    assert rc == 2 and "train results" in err
    assert (config.output_dir / "config.yaml").read_text() == saved


def test_stale_fold_files_are_ignored_reported_and_removed_by_overwrite(study, capsys, caplog):
    config, cfg = study
    out = config.output_dir
    folds = out / "training" / "folds"
    shutil.copy(folds / "rep00_sub-S01.pt", folds / "rep00_sub-S09.pt")
    shutil.copy(folds / "rep00_sub-S01.json", folds / "rep00_sub-S09.json")
    rc, _, _ = run_cli(capsys, "report", cfg)
    assert rc == 0
    html = (out / "report.html").read_text()
    assert "3 folds x 1 repetition(s)" in html and "of 3 held-out subjects" in html
    assert "3 held-out subject(s) x 1 repetition(s)" in html  # the explain section
    caplog.clear()
    rc, _, _ = run_cli(capsys, "train", cfg)
    assert rc == 0
    assert any("not listed in its manifest" in r.getMessage() for r in caplog.records)
    assert "folds/rep00_sub-S09.pt" not in Manifest.read(out / "training").products
    digests = _checkpoint_digests(out)
    rc, _, _ = run_cli(capsys, "train", cfg, "--overwrite")
    assert rc == 0 and not (folds / "rep00_sub-S09.pt").exists()
    # retraining reproduces every model bit for bit, and so every checkpoint's bytes
    assert _checkpoint_digests(out) == digests
    # the train results were rewritten (new timings): explain checks them again ...
    rc, _, err = run_cli(capsys, "report", cfg)
    assert rc == 2 and "have changed or gone since" in err
    # ... and reuses every explanation, since each explains the very same model
    rc, stdout, _ = run_cli(capsys, "explain", cfg)
    assert rc == 0 and "explained 0 fold(s), 3 already done" in stdout


def _checkpoint_digests(out):
    from eegcrp.io import sha256_file

    return {p.name: sha256_file(p) for p in sorted((out / "training" / "folds").glob("*.pt"))
            if "S09" not in p.name}  # the stale copy


def test_a_changed_model_recomputes_exactly_its_explanation(study, capsys):
    import torch

    from eegcrp.io import save_checkpoint

    config, cfg = study
    folds = config.output_dir / "training" / "folds"
    pt = folds / "rep00_sub-S02.pt"
    ckpt = torch.load(pt, weights_only=True)
    state = ckpt.pop("state_dict")
    state["classifier.weight"] = state["classifier.weight"] * 0.5
    ckpt.pop("format")
    record = json.loads(pt.with_suffix(".json").read_text())
    record["checkpoint_sha256"] = save_checkpoint(pt, state, ckpt)  # as a retrain would
    pt.with_suffix(".json").write_text(json.dumps(record))
    rc, _, _ = run_cli(capsys, "train", cfg)
    assert rc == 0
    assert Manifest.read(config.output_dir / "training").extra["folds"]["rep00_sub-S02"][
        "checkpoint_sha256"] == record["checkpoint_sha256"]
    rc, stdout, _ = run_cli(capsys, "explain", cfg)
    assert rc == 0 and "explained 1 fold(s), 2 already done" in stdout


def test_corrupt_checkpoint_is_refused_downstream_and_retrained(study, capsys):
    config, cfg = study
    pt = config.output_dir / "training" / "folds" / "rep00_sub-S02.pt"
    pt.write_bytes(pt.read_bytes()[:100])
    rc, _, err = run_cli(capsys, "explain", cfg, "--overwrite")
    assert rc == 2 and "rep00_sub-S02.pt has 100 bytes" in err and "truncated" in err
    assert Manifest.read(config.output_dir / "explain") is not None  # explain kept its results
    rc, stdout, _ = run_cli(capsys, "train", cfg)
    assert rc == 0
    record = json.loads(pt.with_suffix(".json").read_text())
    assert record["threads"] == 1 and record["device"] == "cpu"
    # the retrained model is the same model: its explanation stays valid
    rc, stdout, _ = run_cli(capsys, "explain", cfg)
    assert rc == 0 and "explained 0 fold(s), 3 already done" in stdout


def test_corrupt_explain_fold_is_recomputed(study, capsys):
    config, cfg = study
    h5 = config.output_dir / "explain" / "folds" / "rep00_sub-S03.h5"
    h5.write_bytes(h5.read_bytes()[:1000])
    rc, _, err = run_cli(capsys, "report", cfg)
    assert rc == 2 and "explain results" in err and "damaged" in err
    rc, stdout, _ = run_cli(capsys, "explain", cfg)
    assert rc == 0 and "explained 1 fold(s), 2 already done" in stdout
    rc, _, _ = run_cli(capsys, "report", cfg)
    assert rc == 0


def test_report_on_an_empty_folder_says_nothing_ran(tmp_path, capsys, tiny_study):
    cfg = write_yaml(tiny_study.model_copy(update={"output_dir": tmp_path / "empty"}),
                tmp_path / "t.yaml")
    rc, _, err = run_cli(capsys, "report", cfg)
    assert rc == 2 and "nothing has been run" in err and "eegcrp run" in err
    assert not (tmp_path / "empty").exists() or files_in(tmp_path / "empty") == []


def test_explain_without_training_says_what_to_run(tmp_path, capsys, tiny_study):
    cfg = write_yaml(tiny_study.model_copy(update={"output_dir": tmp_path / "x",
                                              "cache_dir": tiny_study.resolved_cache_dir()}),
                tmp_path / "t.yaml")
    rc, _, err = run_cli(capsys, "explain", cfg)
    assert rc == 2 and "no train results" in err and "eegcrp train" in err
    assert not (tmp_path / "x" / "explain").exists()
    assert not (tmp_path / "x" / "config.yaml").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "explain.layer=b2_bn"], "not a conv layer of EEGNet; use one of"),
    (["--set", "training.n_jobs=0"], "use a positive number of parallel workers or -1"),
    (["--set", "training.device=gpu"], "unknown device 'gpu'"),
    (["--set", "dataset.subjects=[1, 2"], "not valid YAML"),
    (["--set", "explain.init=softmax"], "explain.init"),
])
def test_bad_settings_exit_2_before_anything_runs(tmp_path, capsys, tiny_study, args, message):
    cfg = write_yaml(tiny_study.model_copy(update={"output_dir": tmp_path / "x"}),
                tmp_path / "t.yaml")
    rc, _, err = run_cli(capsys, "explain", cfg, *args)
    assert rc == 2 and message in err
    assert not (tmp_path / "x").exists()


def test_absent_cuda_device_exits_2(study, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    config, cfg = study
    before = files_in(config.output_dir / "explain")
    rc, _, err = run_cli(capsys, "explain", cfg, "--overwrite", "--set", "explain.device=cuda")
    assert rc == 2 and "explain.device is 'cuda' but that CUDA device is not available" in err
    assert files_in(config.output_dir / "explain") == before  # refused: nothing removed


def test_cli_commands_come_from_the_registry(capsys):
    from eegcrp.cli import _parser

    commands = set(_parser()._subparsers._group_actions[0].choices)
    assert commands == {*STAGES, "run", "demo", "compare", "to-bids"}
    with pytest.raises(SystemExit):
        main(["--version"])
    import eegcrp

    assert capsys.readouterr().out.strip() == f"eegcrp {eegcrp.__version__}"


def test_same_config_gives_the_same_checkpoint_bytes_serial_or_parallel(tiny_study, tmp_path):
    """Checkpoints hold results only: no timings, no parallel settings, canonical positions
    (the tiny study computed its first subject fresh; this run reads it from the cache)."""
    from tests.helpers import run_stages

    other = tiny_study.model_copy(update={
        "output_dir": tmp_path / "parallel", "cache_dir": tiny_study.resolved_cache_dir(),
        "training": tiny_study.training.model_copy(update={"n_jobs": 2}),
    })
    run_stages(other, "prepare", "train")
    assert _checkpoint_digests(other.output_dir) == _checkpoint_digests(tiny_study.output_dir)


def test_a_copied_run_folder_reads_its_own_cache_never_the_original(tiny_study, tmp_path,
                                                                    capsys):
    from pathlib import Path

    from eegcrp.stages.prepare import load_prepared
    from eegcrp.stages.registry import require

    copy = tmp_path / "copy"
    shutil.copytree(tiny_study.output_dir, copy)
    config = tiny_study.model_copy(update={"output_dir": copy})  # default cache: copy/cache
    assert Manifest.read(copy / "prepare").extra["cache"]["relative_to_run"]
    data = load_prepared(require("prepare", config))
    assert Path(data.info["cache"]).resolve().is_relative_to(copy.resolve())
    # a copy without its cache is refused, it does not read the original's
    shutil.rmtree(copy / "cache")
    rc, _, err = run_cli(capsys, "report", write_yaml(config, tmp_path / "copy.yaml"))
    assert rc == 2 and "cached windows" in err and "`eegcrp prepare CONFIG`" in err
    assert str(tiny_study.output_dir) not in err

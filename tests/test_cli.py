"""The eegcrp command line, end to end on the real BCI IV 2b data."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from eegcrp.cli import main
from tests.helpers import real_folder


def _stamp(path):
    """A file's inode and mtime: both stay when nobody wrote the file again."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


@pytest.mark.realdata
def test_prepare_bciciv2b_end_to_end(tmp_path, capsys) -> None:
    real_folder("bciciv2b_epoched")
    rc = main(["prepare", "configs/bciciv2b.yaml", "--out", str(tmp_path), "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "B09" in out and "left_hand" in out and "windows: 3240, subjects: 9" in out
    table = pd.read_csv(tmp_path / "prepare" / "summary.csv", index_col="subject")
    assert table.shape[0] == 9 and (table["left_hand"] == 180).all()
    assert (table["sfreq"] == 128).all() and (table["epoch_s"] == 3).all()
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["output_dir"] == str(tmp_path)
    # second run reads the cache: no cached file is written again
    # (inode, mtime): an atomic rewrite gets a new inode even within the clock's resolution
    cache = {p: _stamp(p) for p in (tmp_path / "cache").rglob("*")
             if p.is_file() and p.name != "manifest.json"}  # the cache's index is rewritten
    assert len([p for p in cache if p.name.endswith("-epo.fif")]) == 9
    assert main(["prepare", "configs/bciciv2b.yaml", "--out", str(tmp_path), "-q"]) == 0
    assert {p: _stamp(p) for p in cache} == cache


@pytest.mark.realdata
def test_set_overrides_and_report(tmp_path, capsys) -> None:
    real_folder("bciciv2b_epoched")
    args = ["configs/bciciv2b.yaml", "--out", str(tmp_path), "-q",
            "--set", "dataset.subjects=[1, 2]", "--set", "dataset.sessions=[01T]"]
    assert main(["report", *args]) == 2  # nothing has run there yet
    assert "nothing has been run" in capsys.readouterr().err
    assert main(["prepare", *args]) == 0 and main(["report", *args]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "Windows per subject and class" in html and "Per-class power spectra" in html
    assert "B02" in html and "B03" not in html
    assert "bipolar derivations" in html  # C3/Cz/C4 of BCI IV 2b: no scalp maps


@pytest.mark.realdata
@pytest.mark.parametrize(("args", "message"), [
    (["--set", "preprocessing.windw=2"], "preprocessing.windw: unknown key"),
    (["--set", "dataset.subjects=[42]"], r"subjects \[42\] not found"),
    (["--set", "preprocessing.h_freq=90"], "below twice h_freq"),
])
def test_errors_exit_2_with_message(tmp_path, capsys, args, message) -> None:
    real_folder("bciciv2b_epoched")
    rc = main(["prepare", "configs/bciciv2b.yaml", "--out", str(tmp_path), "-q", *args])
    assert rc == 2
    import re

    assert re.search(message, capsys.readouterr().err)


def test_missing_config_file(capsys) -> None:
    assert main(["prepare", "nope.yaml"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_all_stages_on_tiny_simulated_study(tmp_path, capsys) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "name: tiny\n"
        "dataset: {kind: simulated, n_subjects: 3, n_trials: 8, channels: 10-20_19}\n"
        "preprocessing: {window: 2.0, step: 1.0, h_freq: 40}\n"
        "model: {kernel_length: 16}\n"
        "training: {repetitions: 1, max_epochs: 2, threads: 1}\n"
        "explain: {batch_size: 16}\n"
    )
    rc = main(["run", str(config), "--out", str(tmp_path / "out"), "-q"])
    assert rc == 0, capsys.readouterr().err
    out = tmp_path / "out"
    assert (out / "training" / "metrics.csv").exists()
    assert len(list((out / "training" / "folds").glob("*.pt"))) == 3
    assert len(list((out / "explain" / "folds").glob("*.h5"))) == 3
    for stage in ("prepare", "training", "explain", "report"):
        assert (out / stage / "manifest.json").is_file()
    html = (out / "report.html").read_text()
    assert "Classification" in html and "Ground truth (simulation)" in html
    # a re-run reuses every finished fold: no model, heatmap or ICA is written again
    done = {p: _stamp(p) for p in out.rglob("*") if p.suffix in (".pt", ".h5", ".nc", ".fif")}
    assert len(done) >= 3 + 3 + 3  # folds, explain folds, subjects' cache files
    assert main(["run", str(config), "--out", str(out), "-q"]) == 0
    assert {p: _stamp(p) for p in done} == done
    # explain without training is a clear error
    rc = main(["explain", str(config), "--out", str(tmp_path / "empty"), "-q"])
    assert rc == 2 and "run `eegcrp train CONFIG`" in capsys.readouterr().err


def _tiny_yaml(tmp_path, **update):
    from tests.helpers import tiny_config

    config = tiny_config(tmp_path / "run").model_copy(update=update)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return str(path)


@pytest.mark.parametrize(("where", "message"), [
    ("file", "is a file; choose a folder path"),
    ("below_file", "lies below the file"),
    ("cache_file", "cache_dir"),
    ("unwritable", "cannot use"),
])
def test_unusable_output_paths_exit_2_without_traceback(tmp_path, capsys, where, message):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = {"file": blocker, "below_file": blocker / "run", "cache_file": tmp_path / "run",
           # sysfs refuses new folders even to root (EPERM): an unwritable place for anyone
           "unwritable": "/sys/eegcrp-test-run"}[where]
    update = {"cache_dir": blocker} if where == "cache_file" else {}
    if where == "unwritable" and not __import__("os").path.isdir("/sys/kernel"):
        pytest.skip("no sysfs here")
    rc = main(["prepare", _tiny_yaml(tmp_path, **update), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert blocker.read_text() == "not a folder"


def test_a_folder_given_as_config_says_so(tmp_path, capsys) -> None:
    assert main(["prepare", str(tmp_path)]) == 2
    assert "is a folder, not a config file" in capsys.readouterr().err


def test_windows_too_short_for_the_model_exit_2(tmp_path, capsys) -> None:
    rc = main(["train", _tiny_yaml(tmp_path), "-q", "--set", "preprocessing.window=0.01"])
    err = capsys.readouterr().err
    assert rc == 2 and "too short for EEGNet" in err and "preprocessing.window" in err
    assert not (tmp_path / "run").exists()  # refused before prepare ran for it

"""BIDS in and out: real recordings written with ``eegcrp to-bids`` and read back with
``dataset.kind: bids`` give the native loaders' windows; sidecars decide channels,
positions and mains; every mistake a BIDS user makes exits 2 with the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from eegcrp.config import load_config
from eegcrp.preprocessing import prepare
from tests.helpers import real_folder, run_cli

mne_bids = pytest.importorskip("mne_bids")
pytestmark = pytest.mark.realdata

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _write(capsys, config: str, root: Path, subjects: str) -> dict:
    rc, out, err = run_cli(capsys, "to-bids", str(CONFIGS / config), str(root), "--set",
                           f"dataset.subjects={subjects}")
    assert rc == 0, err
    assert "BIDS dataset in" in out
    return yaml.safe_load((root / "code" / "eegcrp_dataset.yaml").read_text())["dataset"]


def _config(config: str, dataset: dict | None, tmp: Path, subjects: str | None = None):
    raw = yaml.safe_load((CONFIGS / config).read_text())
    sets = [f"cache_dir={tmp / 'cache'}"]
    if dataset is not None:
        raw["dataset"] = dataset
    else:
        sets.append(f"dataset.subjects={subjects}")
    return load_config(raw, sets, output_dir=tmp / "out")


@pytest.fixture(scope="module")
def eegmat_bids(tmp_path_factory):
    """eegmat subjects 0 and 1 as BIDS (read-only: copy before changing anything)."""
    real_folder("eegmat_arithmetic_21ch")
    from eegcrp.cli import main

    root = tmp_path_factory.mktemp("bids") / "eegmat"
    assert main(["to-bids", str(CONFIGS / "eegmat.yaml"), str(root), "--set",
                 "dataset.subjects=[0, 1]", "-q"]) == 0
    return root, yaml.safe_load((root / "code" / "eegcrp_dataset.yaml").read_text())["dataset"]


def _copy(eegmat_bids, tmp_path) -> tuple[Path, dict]:
    root, dataset = eegmat_bids
    target = tmp_path / "bids"
    shutil.copytree(root, target)
    return target, {**dataset, "path": str(target)}


@pytest.mark.parametrize(("config", "folder", "subjects", "exact"), [
    ("eegmmidb.yaml", "eegmmidb_mi", "[1, 2]", True),
    ("eegmat.yaml", "eegmat_arithmetic_21ch", "[0, 1]", False),
])
def test_a_bids_copy_gives_the_native_windows(capsys, tmp_path, config, folder, subjects,
                                              exact):
    real_folder(folder)
    dataset = _write(capsys, config, tmp_path / "bids", subjects)
    native = prepare(_config(config, None, tmp_path / "native", subjects))
    copy = prepare(_config(config, dataset, tmp_path / "copy"))
    assert copy.subjects == native.subjects
    assert copy.classes == native.classes and copy.task == native.task
    assert copy.ch_names == native.ch_names
    assert copy.mains_freq == native.mains_freq
    xa, ya, ga = native.get_data()
    xb, yb, gb = copy.get_data()
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ga, gb)
    if exact:  # EDF's 16-bit samples are exact in BrainVision's float32
        np.testing.assert_array_equal(xa, xb)
    else:  # eegmat's EDF scaling is not: float32 rounding, 6e-8 of the range measured
        np.testing.assert_allclose(xb, xa, rtol=0, atol=1e-6 * np.abs(xa).max())
    notes = " ".join(copy.info["notes"])
    assert "positions from electrodes.tsv" in notes and "from PowerLineFrequency" in notes


def test_every_written_file_is_valid_bids(eegmat_bids):
    from bids_validator import BIDSValidator

    root, _ = eegmat_bids
    files = [p for p in root.rglob("*") if p.is_file()]
    invalid = [p for p in files
               if not BIDSValidator().is_bids("/" + p.relative_to(root).as_posix())]
    assert files and not invalid


def test_bad_channels_are_left_out(eegmat_bids, tmp_path):
    root, dataset = _copy(eegmat_bids, tmp_path)
    for sub in ("S00", "S01"):
        for run in ("1", "2"):
            bp = mne_bids.BIDSPath(subject=sub, task=dataset["task"], run=run,
                                   datatype="eeg", root=root)
            mne_bids.mark_channels(bp, ch_names=["Fp1"], status="bad", verbose="error")
    ds = prepare(_config("eegmat.yaml", dataset, tmp_path))
    assert "Fp1" not in ds.ch_names and len(ds.ch_names) == 18
    assert any("sub-S00: Fp1" in n for n in ds.info["notes"])


def test_subjects_with_other_bad_channels_name_the_common_set(eegmat_bids, tmp_path,
                                                              capsys):
    from tests.helpers import write_yaml

    root, dataset = _copy(eegmat_bids, tmp_path)
    bp = mne_bids.BIDSPath(subject="S01", task=dataset["task"], run="2", datatype="eeg",
                           root=root)
    mne_bids.mark_channels(bp, ch_names=["T7"], status="bad", verbose="error")
    config = write_yaml(_config("eegmat.yaml", dataset, tmp_path), tmp_path / "c.yaml")
    rc, _, err = run_cli(capsys, "prepare", config)
    assert rc == 2 and "sub-S01: without ['T7']" in err and "set dataset.channels" in err
    common = [c for c in prepare(_config("eegmat.yaml", None, tmp_path / "n", "[0, 1]"))
              .ch_names if c != "T7"]
    ds = prepare(_config("eegmat.yaml", {**dataset, "channels": common}, tmp_path / "c"))
    assert ds.ch_names == common


def test_positions_come_from_electrodes_tsv(eegmat_bids, tmp_path):
    from eegcrp.data.montage import missing_positions

    root, dataset = _copy(eegmat_bids, tmp_path)
    moved = (0.01, 0.02, 0.09)
    for path in root.rglob("*_electrodes.tsv"):
        table = pd.read_csv(path, sep="\t", dtype=str)
        table.loc[table["name"] == "Cz", ["x", "y", "z"]] = [str(v) for v in moved]
        table.to_csv(path, sep="\t", index=False)
    ds = prepare(_config("eegmat.yaml", dataset, tmp_path))
    info = ds[ds.subjects[0]].info
    assert not missing_positions(info)
    cz = info["chs"][info["ch_names"].index("Cz")]["loc"][:3]
    np.testing.assert_allclose(cz, moved, atol=1e-6)
    # without electrodes.tsv the standard montage is used, and the notes say so
    for path in [*root.rglob("*_electrodes.*"), *root.rglob("*_coordsystem.json")]:
        path.unlink()
    ds = prepare(_config("eegmat.yaml", dataset, tmp_path / "standard"))
    assert any("standard montage standard_1005" in n for n in ds.info["notes"])
    info = ds[ds.subjects[0]].info
    assert not np.allclose(info["chs"][info["ch_names"].index("Cz")]["loc"][:3], moved)


def _edit_events(root: Path, column: str, mapping: dict) -> None:
    for path in root.rglob("*_events.tsv"):
        table = pd.read_csv(path, sep="\t", dtype=str)
        table[column] = table[column].map(mapping)
        table.to_csv(path, sep="\t", index=False)


@pytest.mark.parametrize(("change", "message"), [
    ("task", "tasks present: ['internalattention']"),
    ("no_events", "has no events file"),
    ("values", "values present: ['arith', 'rest']"),
    ("epoched", "is an epoched recording"),
    ("not_bids", "is not a BIDS root"),
    ("label", "is not a label"),
])
def test_mistakes_exit_2_naming_the_fix(eegmat_bids, tmp_path, capsys, change, message):
    from tests.helpers import write_yaml

    root, dataset = _copy(eegmat_bids, tmp_path)
    if change == "task":
        dataset["task"] = "rest"
    elif change == "no_events":
        next(iter(root.rglob("*_run-2_events.tsv"))).unlink()
    elif change == "values":
        _edit_events(root, "trial_type", {"rest": "rest", "arithmetic": "arith"})
        dataset["classes"] = {"count": "arithmetic", "sit": "rest"}
    elif change == "epoched":
        for path in root.rglob("*_eeg.json"):
            side = json.loads(path.read_text())
            path.write_text(json.dumps({**side, "RecordingType": "epoched"}))
    elif change == "not_bids":
        (root / "dataset_description.json").unlink()
    if change == "label":
        raw = yaml.safe_load((CONFIGS / "eegmat.yaml").read_text())
        raw["dataset"] = {**dataset, "task": "mental arithmetic"}
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(raw))
        config = str(path)
    else:
        config = write_yaml(_config("eegmat.yaml", dataset, tmp_path), tmp_path / "c.yaml")
    rc, _, err = run_cli(capsys, "prepare", config)
    assert rc == 2 and message in err, err
    assert "Traceback" not in err


def test_free_task_labels_are_kept(eegmat_bids, tmp_path):
    _, dataset = _copy(eegmat_bids, tmp_path)
    ds = prepare(_config("eegmat.yaml", {**dataset, "family": None}, tmp_path))
    assert ds.task == "internalattention"  # the BIDS label itself: no known family


def test_to_bids_refuses_epoched_sources_and_a_used_folder(tmp_path, capsys, eegmat_bids):
    real_folder("bciciv2b_epoched")
    rc, _, err = run_cli(capsys, "to-bids", str(CONFIGS / "bciciv2b.yaml"),
                         str(tmp_path / "b"), "--set", "dataset.subjects=[1]")
    assert rc == 2 and "holds trials only" in err
    assert not (tmp_path / "b").exists()  # nothing left behind
    root, _ = eegmat_bids
    rc, _, err = run_cli(capsys, "to-bids", str(CONFIGS / "eegmat.yaml"), str(root))
    assert rc == 2 and "is not empty" in err


def test_value_codes_stand_in_for_a_missing_trial_type(eegmat_bids, tmp_path):
    root, dataset = _copy(eegmat_bids, tmp_path)
    by_type = prepare(_config("eegmat.yaml", dataset, tmp_path / "a"))
    for path in root.rglob("*_events.tsv"):
        table = pd.read_csv(path, sep="\t", dtype=str)
        table.drop(columns="trial_type").to_csv(path, sep="\t", index=False)
    codes = {"1": "rest", "2": "arithmetic"}  # to-bids coded the classes in this order
    by_value = prepare(_config("eegmat.yaml", {**dataset, "classes": codes}, tmp_path / "b"))
    assert by_value.classes == by_type.classes
    np.testing.assert_array_equal(by_value.get_data()[1], by_type.get_data()[1])
    np.testing.assert_array_equal(by_value.get_data()[0], by_type.get_data()[0])

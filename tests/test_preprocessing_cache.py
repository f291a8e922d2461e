"""prepare() and its cache: keys, sidecars, continuous data, corrupt files, errors."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import mne
import numpy as np
import pytest

from eegcrp.config import load_config
from eegcrp.data.base import DataError
from eegcrp.preprocessing import cache as cache_module
from eegcrp.preprocessing import cache_folder, cache_key, load_continuous, prepare
from tests.helpers import real_folder, write_kul_subject

SIM = {"kind": "simulated", "n_subjects": 3, "n_trials": 8, "channels": "10-20_19",
       "margin": 3.0}


def _config(tmp_path: Path, dataset: dict | None = None, **pre):
    return load_config({"dataset": dataset or SIM, "output_dir": str(tmp_path / "out"),
                        "preprocessing": pre})


def _bci_config(tmp_path: Path, **pre):
    real = real_folder("bciciv2b_epoched")
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        for name in ("B0101T.mat", "B0201T.mat", "B0301T.mat"):
            shutil.copy(real / name, data / name)
    return load_config({"dataset": {"kind": "bciciv2b", "path": str(data), "sessions": ["01T"]},
                        "output_dir": str(tmp_path / "out"),
                        "preprocessing": {"car": False, **pre}})


def _cached_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _trial_cuts(raw: mne.io.BaseRaw, meta, n_samples: int) -> np.ndarray:
    """Windows cut from the continuous cache: k-th trial annotation + window onset."""
    sfreq = raw.info["sfreq"]
    trials = [a for a in raw.annotations if a["description"].startswith("trial/")]
    x = raw.get_data()
    out = []
    for trial, onset in zip(meta["trial"], meta["onset"], strict=True):
        start = int(round(trials[trial]["onset"] * sfreq)) + int(round(onset * sfreq))
        out.append(x[:, start:start + n_samples])
    return np.array(out)


# --------------------------------------------------------------------------- interface
def test_dataset_info_metadata_and_exact_continuous_cuts(tmp_path: Path) -> None:
    cfg = _config(tmp_path, window=2.0, step=0.5)
    ds = prepare(cfg, progress=False)
    info = ds.info
    assert {"cache", "cache_key", "cache_files", "source", "cache_hits", "notes",
            "ground_truth"} <= set(info)
    assert info["cache"] == str(cache_folder(cfg)) and info["cache_key"] == cache_key(cfg)
    assert info["source"] == "simulated" and info["cache_hits"] == 0 and info["notes"] == []
    assert sorted(info["cache_files"]) == ds.subjects == ["S01", "S02", "S03"]
    entry = info["cache_files"]["S02"]
    assert entry["windows"].endswith("sub-S02-nofiles-epo.fif")
    assert entry["continuous"].endswith("sub-S02-nofiles-raw.fif")
    assert Path(entry["windows"]).is_absolute() and len(entry["sha256"]["continuous"]) == 64
    meta = ds["S02"].metadata
    assert list(meta.columns) == ["subject", "trial", "window", "onset", "segment",
                                  "trial_onset", "blinks", "saccades", "muscle_bursts"]
    assert meta["trial"].tolist() == np.repeat(np.arange(8), 3).tolist()
    assert meta["window"].tolist()[:4] == [0, 1, 2, 0] and meta["onset"].tolist()[:3] == [
        0.0, 1.0, 2.0]
    np.testing.assert_allclose(meta["trial_onset"].unique(), 3.0 + 4.0 * np.arange(8))
    # the continuous cache: one segment at 128 Hz, one annotation per trial, windows are cuts
    raw = load_continuous(ds, "S02")
    assert raw.info["sfreq"] == 128.0 and raw.n_times == (2 * 3 + 8 * 4) * 128
    trials = [a for a in raw.annotations if a["description"].startswith("trial/")]
    labels = [a["description"][6:] for a in trials]
    assert labels == [ds.classes[c - 1] for c in ds["S02"].events[::3, 2]]
    assert {a["duration"] for a in trials} == {4.0}
    np.testing.assert_array_equal(_trial_cuts(raw, meta, 256), ds["S02"].get_data())
    # CAR was applied to the continuous data (a later ICA fits on it), not z-scoring
    assert np.abs(raw.get_data().mean(axis=0)).max() < 1e-6 * np.abs(raw.get_data()).max()
    z = prepare(_config(tmp_path, window=2.0, step=0.5, zscore=True), progress=False)
    zraw = load_continuous(z, "S02")
    np.testing.assert_array_equal(zraw.get_data(), raw.get_data())
    cuts = _trial_cuts(zraw, z["S02"].metadata, 256)
    expected = (cuts - cuts.mean(axis=(1, 2), keepdims=True)) / cuts.std(axis=(1, 2),
                                                                         keepdims=True)
    np.testing.assert_allclose(z["S02"].get_data(), expected, rtol=1e-5, atol=1e-5)
    sidecar = json.loads(Path(entry["windows"].replace("-epo.fif", ".json")).read_text())
    assert sidecar["files"]["continuous"]["sha256"] == entry["sha256"]["continuous"]
    assert sidecar["files"]["windows"]["bytes"] == Path(entry["windows"]).stat().st_size


@pytest.mark.realdata
def test_epoched_source_continuous_cache_and_note(tmp_path: Path) -> None:
    ds = prepare(_bci_config(tmp_path), progress=False)
    (note,) = ds.info["notes"]
    assert note.startswith("bciciv2b: the source exists only as 4-s epochs")
    raw = load_continuous(ds, "B02")
    assert raw.n_times == 120 * 512
    boundaries = [a for a in raw.annotations if a["description"] == "BAD boundary"]
    assert len(boundaries) == 119 and boundaries[0]["onset"] == 4.0
    np.testing.assert_array_equal(_trial_cuts(raw, ds["B02"].metadata, 384), ds["B02"].get_data())
    assert prepare(_bci_config(tmp_path), progress=False).info["notes"] == [note]


# --------------------------------------------------------------------------- keys, reuse
@pytest.mark.realdata
def test_cache_hit_invalidation_and_subject_reuse(tmp_path: Path) -> None:
    cfg = _bci_config(tmp_path)
    first = prepare(cfg, progress=False)
    assert first.info["cache_hits"] == 0 and first.summary()["n_epochs"].tolist() == [120] * 3
    second = prepare(cfg, progress=False)
    assert second.info["cache_hits"] == 3
    for s in first.subjects:  # the cache returns exactly what was computed
        np.testing.assert_array_equal(first[s].get_data(), second[s].get_data())
        assert second[s].metadata.astype(str).equals(first[s].metadata.astype(str))
    assert second.info["cache_files"] == first.info["cache_files"]
    # a changed preprocessing config never reuses stale data
    other = _bci_config(tmp_path, window=2.0)
    assert cache_folder(other) != cache_folder(cfg)
    assert prepare(other, progress=False).info["cache_hits"] == 0
    # a changed source file invalidates only that subject
    f = tmp_path / "data" / "B0201T.mat"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert prepare(cfg, progress=False).info["cache_hits"] == 2
    # a subset of subjects reuses the shared cache
    sub = cfg.model_copy(deep=True)
    sub.dataset.subjects = [1, 3]
    assert cache_folder(sub) == cache_folder(cfg)
    assert prepare(sub, progress=False).info["cache_hits"] == 2
    manifest = (cache_folder(cfg) / "manifest.json").read_text()
    assert '"left_hand"' in manifest and '"sfreq": 128.0' in manifest


def test_cache_key_covers_version_and_source_code(tmp_path: Path, monkeypatch) -> None:
    cfg = _config(tmp_path)
    key = cache_key(cfg)
    monkeypatch.setattr(cache_module, "package_version", lambda: "99.0")
    assert cache_key(cfg) != key
    monkeypatch.undo()
    # the code hash reads the sources of eegcrp.data and eegcrp.preprocessing, nothing else
    package = tmp_path / "eegcrp"
    shutil.copytree(Path(cache_module.__file__).parents[1], package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_module, "_PACKAGE", package)
    hashes = []
    for edit in (None, "data/eegmat.py", "preprocessing/core.py", "io.py", "config/data.py"):
        if edit:
            with open(package / edit, "a") as fh:
                fh.write("\n# changed\n")
        cache_module.code_hash.cache_clear()
        hashes.append(cache_module.code_hash())
    cache_module.code_hash.cache_clear()
    assert hashes[0] != hashes[1] != hashes[2]
    assert hashes[2] == hashes[3] == hashes[4]  # io.py and config/ produce no cached content
    assert cache_key(cfg) != key
    monkeypatch.undo()
    cache_module.code_hash.cache_clear()  # later tests must see the real sources' hash


def test_prepare_is_deterministic_without_cache(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    a = prepare(cfg, progress=False, use_cache=False)
    b = prepare(cfg, progress=False, use_cache=False)
    np.testing.assert_array_equal(a["S01"].get_data(), b["S01"].get_data())
    assert b.info["cache_hits"] == 0


# --------------------------------------------------------------------------- damage
@pytest.mark.parametrize("role", ["continuous", "windows"])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_cache_file_is_recomputed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, role: str, damage: str
) -> None:
    cfg = _config(tmp_path)
    first = prepare(cfg, progress=False)
    path = Path(first.info["cache_files"]["S02"][role])
    content = bytearray(path.read_bytes())
    if damage == "truncate":
        content = content[: len(content) // 2]
    else:  # same size, one byte changed inside the data
        content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with caplog.at_level(logging.WARNING):
        second = prepare(cfg, progress=False)
    assert second.info["cache_hits"] == 2
    assert f"cache file {path} is truncated or corrupt" in caplog.text
    assert "recomputing subject S02" in caplog.text
    np.testing.assert_array_equal(second["S02"].get_data(), first["S02"].get_data())
    assert prepare(cfg, progress=False).info["cache_hits"] == 3  # repaired
    assert not [n for n in _cached_files(cache_folder(cfg)) if n.startswith(".tmp-")]


def test_unreadable_sidecar_is_recomputed(tmp_path: Path, caplog) -> None:
    cfg = _config(tmp_path)
    first = prepare(cfg, progress=False)
    sidecar = Path(first.info["cache_files"]["S01"]["windows"].replace("-epo.fif", ".json"))
    sidecar.write_text('{"files": ')
    with caplog.at_level(logging.WARNING):
        assert prepare(cfg, progress=False).info["cache_hits"] == 2
    assert f"cache sidecar {sidecar} is unreadable" in caplog.text


def test_interrupted_write_leaves_nothing_half_written(tmp_path: Path, monkeypatch) -> None:
    cfg = _config(tmp_path)

    def broken_save(self, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(mne.io.BaseRaw, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        prepare(cfg, progress=False)
    assert _cached_files(cache_folder(cfg)) == []
    monkeypatch.undo()
    assert prepare(cfg, progress=False).info["cache_hits"] == 0


def test_load_continuous_errors(tmp_path: Path) -> None:
    ds = prepare(_config(tmp_path), progress=False)
    with pytest.raises(DataError, match=r"no cached continuous data for subject 'S09'"):
        load_continuous(ds, "S09")
    path = Path(ds.info["cache_files"]["S01"]["continuous"])
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"changed since prepare.*run prepare again"):
        load_continuous(ds, "S01")


# --------------------------------------------------------------------------- errors
@pytest.mark.realdata
def test_window_longer_than_every_trial_names_the_trial_length(tmp_path, caplog) -> None:
    cfg = _bci_config(tmp_path, window=4.5)  # 4-s trials
    with caplog.at_level(logging.WARNING), pytest.raises(
        DataError, match=r"trials of subject\(s\) \['B01', 'B02', 'B03'\] are 4 s long, shorter "
                         r"than preprocessing.window \(4.5 s\).*lower preprocessing.window to "
                         r"at most 4 s \(--set preprocessing.window=4\)$"):
        prepare(cfg, progress=False)
    assert "shorter than preprocessing.window" in caplog.text and "is dropped" in caplog.text
    assert _cached_files(cache_folder(cfg)) == []


@pytest.mark.realdata
def test_car_on_bipolar_channels_is_refused_before_anything_is_written(tmp_path) -> None:
    cfg = _bci_config(tmp_path, car=True)
    with pytest.raises(DataError, match=r"are bipolar derivations; their average is no "
                                        r"reference.*--set preprocessing.car=false"):
        prepare(cfg, progress=False)
    assert _cached_files(cache_folder(cfg)) == []


def test_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    folder = cache_folder(cfg)
    folder.mkdir(parents=True)
    stale, fresh = folder / ".tmp-old-epo.fif", folder / ".tmp-new-epo.fif"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (stale.stat().st_atime - 7200, stale.stat().st_mtime - 7200))
    prepare(cfg, progress=False)
    assert not stale.exists() and fresh.exists()  # a fresh one may be another writer's


def test_window_longer_than_simulated_trials_names_the_loader_fix(tmp_path) -> None:
    cfg = _config(tmp_path, {**SIM, "trial_duration": 2.0, "effect_window": [0.5, 1.5]})
    with pytest.raises(DataError, match=r"are 2 s long.*at most 2 s.*, or raise "
                                        r"dataset.trial_duration"):
        prepare(cfg, progress=False)
    assert _cached_files(cache_folder(cfg)) == []


def test_subject_with_too_short_trials_is_dropped_with_warning(tmp_path, caplog) -> None:
    data = tmp_path / "kul"
    data.mkdir()
    write_kul_subject(data, 1)
    write_kul_subject(data, 2, n_samples=2 * 128)  # 2-s trials: no 3-s window fits
    write_kul_subject(data, 3)
    cfg = load_config({"dataset": {"kind": "kul_aad", "path": str(data), "n_trials": 3},
                       "output_dir": str(tmp_path / "out")})
    with caplog.at_level(logging.WARNING):
        ds = prepare(cfg, progress=False)
    assert ds.subjects == ["S1", "S3"] and sorted(ds.info["cache_files"]) == ["S1", "S3"]
    assert "S2.mat (subject S2): trials are 2 s long" in caplog.text
    assert "subject S2 is dropped" in caplog.text
    assert len(ds["S1"]) == 3 * 6  # three 20-s trials, six 3-s windows each

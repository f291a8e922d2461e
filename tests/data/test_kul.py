"""KU Leuven AAD loader on small files written with the release's structure."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pytest
import scipy.io

from eegcrp.config import KULConfig
from eegcrp.data.base import DataError
from eegcrp.data.kul import CHANNELS, EVENT_ID, KULLoader
from eegcrp.data.registry import get_loader
from tests.helpers import KUL_SECONDS, KUL_SFREQ, kul_trial, write_kul_file, write_kul_subject


def _loader(folder: Path, **kwargs: Any) -> KULLoader:
    return KULLoader(KULConfig(path=folder, n_trials=3, **kwargs))


def test_loads_two_subjects(tmp_path: Path) -> None:
    write_kul_subject(tmp_path, 1, "LRL")
    write_kul_subject(tmp_path, 2, "RRL")
    (tmp_path / "notes.txt").write_text("ignored")
    loader = get_loader(KULConfig(path=tmp_path, n_trials=3))
    assert isinstance(loader, KULLoader)
    dataset = loader.load().validate()

    assert dataset.subjects == ["S1", "S2"]
    assert dataset.task == "auditory_attention"
    assert dataset.mains_freq == 50.0
    assert dataset.event_id == EVENT_ID
    assert dataset.sfreq == KUL_SFREQ
    assert dataset.ch_names == CHANNELS == mne.channels.make_standard_montage("biosemi64").ch_names
    ep = dataset["S1"]
    assert ep.get_data().shape == (3, 64, KUL_SECONDS * KUL_SFREQ)
    assert list(ep.events[:, 2]) == [1, 2, 1]
    assert list(dataset["S2"].events[:, 2]) == [2, 2, 1]
    assert list(ep.metadata["subject"]) == ["S1"] * 3
    assert list(ep.metadata["trial"]) == [0, 1, 2]
    assert list(ep.metadata["condition"]) == ["hrtf"] * 3
    assert ep.info["line_freq"] == 50.0
    # µV in the file -> V in the epochs
    raw = scipy.io.loadmat(tmp_path / "S1.mat", squeeze_me=True, struct_as_record=False)
    first = raw["trials"][0].RawData.EegData
    np.testing.assert_allclose(ep.get_data()[0], first.T * 1e-6)
    # positions are those of the biosemi64 montage
    ref = mne.create_info(CHANNELS, KUL_SFREQ, "eeg")
    ref.set_montage("biosemi64")
    locs = np.array([ch["loc"][:3] for ch in ep.info["chs"]])
    np.testing.assert_allclose(locs, [ch["loc"][:3] for ch in ref["chs"]])
    assert np.all(np.linalg.norm(locs, axis=1) > 0.05)
    X, y, groups = dataset.get_data()
    assert X.shape == (6, 64, KUL_SECONDS * KUL_SFREQ)
    assert list(y) == [0, 1, 0, 1, 1, 0]
    assert list(groups) == ["S1"] * 3 + ["S2"] * 3


def test_subject_selection_and_n_trials(tmp_path: Path) -> None:
    write_kul_subject(tmp_path, 1)
    write_kul_subject(tmp_path, 3)
    loader = _loader(tmp_path, subjects=[3])
    assert loader.subject_ids() == ["S3"]
    assert loader.files("S3") == [tmp_path / "S3.mat"]
    ep = KULLoader(KULConfig(path=tmp_path, n_trials=2)).load_subject("S1")
    assert len(ep) == 2
    with pytest.raises(DataError, match=r"subjects \[2\] not found"):
        _loader(tmp_path, subjects=[2]).subject_ids()
    with pytest.raises(DataError, match=r"dataset.n_trials is 4"):
        KULLoader(KULConfig(path=tmp_path, n_trials=4)).load_subject("S1")


def test_single_trial_struct(tmp_path: Path) -> None:
    # MATLAB squeezes a 1-element cell to a bare struct; the reader must accept both.
    rng = np.random.default_rng(0)
    scipy.io.savemat(tmp_path / "S5.mat", {"trials": kul_trial(rng, "R")})
    ep = KULLoader(KULConfig(path=tmp_path, n_trials=1)).load_subject("S5")
    assert ep.get_data().shape == (1, 64, KUL_SECONDS * KUL_SFREQ)
    assert list(ep.events[:, 2]) == [EVENT_ID["right_ear"]]
    assert ep.event_id == EVENT_ID
    assert list(ep.metadata["attended_track"]) == ["1"]


def test_unequal_trials_truncated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(1)
    write_kul_file(
        tmp_path / "S1.mat",
        [kul_trial(rng, "L", 1000), kul_trial(rng, "R", 900), kul_trial(rng, "L", 1100)],
    )
    with caplog.at_level(logging.INFO, logger="eegcrp.data.kul"):
        ep = _loader(tmp_path).load_subject("S1")
    assert ep.get_data().shape == (3, 64, 900)
    assert "truncating all to the shortest (900)" in caplog.text


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist; set dataset.path"):
        _loader(tmp_path / "nope").subject_ids()


def test_folder_without_files(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"no recognised files"):
        _loader(tmp_path).subject_ids()


def test_corrupt_file(tmp_path: Path) -> None:
    path = write_kul_subject(tmp_path, 1)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"S1\.mat could not be read.*copy it again"):
        _loader(tmp_path).load_subject("S1")


def test_not_a_mat_file(tmp_path: Path) -> None:
    (tmp_path / "S1.mat").write_bytes(b"this is not matlab")
    with pytest.raises(DataError, match=r"S1\.mat could not be read"):
        _loader(tmp_path).load_subject("S1")


def test_missing_trials(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "S1.mat", {"data": np.zeros((3, 3))})
    with pytest.raises(DataError, match=r"S1\.mat has no variable 'trials' \(found \['data'\]\)"):
        _loader(tmp_path).load_subject("S1")


def test_missing_field(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trials = [kul_trial(rng, "L") for _ in range(3)]
    del trials[1]["FileHeader"]
    write_kul_file(tmp_path / "S1.mat", trials)
    with pytest.raises(DataError, match=r"S1\.mat: trial 2 has no field 'FileHeader'"):
        _loader(tmp_path).load_subject("S1")


@pytest.mark.parametrize("ear", ["X", "left", 3])
def test_bad_attended_ear(tmp_path: Path, ear: Any) -> None:
    rng = np.random.default_rng(0)
    write_kul_file(tmp_path / "S1.mat",
                   [kul_trial(rng, "L"), kul_trial(rng, ear), kul_trial(rng, "R")])
    with pytest.raises(DataError, match=r"S1\.mat: trial 2 has attended_ear .* expected 'L' or"):
        _loader(tmp_path).load_subject("S1")


def test_wrong_channel_count(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trials = [kul_trial(rng, "L") for _ in range(3)]
    trials[0]["RawData"]["EegData"] = rng.normal(size=(500, 66))
    write_kul_file(tmp_path / "S1.mat", trials)
    with pytest.raises(DataError, match=r"trial 1 has EegData of shape \(500, 66\)"):
        _loader(tmp_path).load_subject("S1")


def test_non_finite_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trials = [kul_trial(rng, "L") for _ in range(3)]
    trials[2]["RawData"]["EegData"][5, 7] = np.nan
    write_kul_file(tmp_path / "S1.mat", trials)
    with pytest.raises(DataError, match=r"S1\.mat \(subject S1\) contains 1 NaN"):
        _loader(tmp_path).load_subject("S1")

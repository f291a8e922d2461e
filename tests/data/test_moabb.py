"""MOABB bridge on MOABB's own offline FakeDataset."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pytest

from eegcrp.config import MOABBConfig
from eegcrp.data.base import DataError
from eegcrp.data.moabb_bridge import MOABBLoader
from eegcrp.data.registry import get_loader

pytest.importorskip("moabb")
# MOABB's FakeDataset still asks MNE for the renamed 'standard_1005' template.
pytestmark = pytest.mark.filterwarnings("ignore:Montage name 'standard_1005':FutureWarning")

CHANNELS = ["C3", "Cz", "C4", "FC3", "CP4"]
FAKE = {
    "event_list": ["left_hand", "right_hand"],
    "n_subjects": 3,
    "n_sessions": 2,
    "n_runs": 1,
    "duration": 40,
    "n_events": 8,
    "channels": CHANNELS,
    "sfreq": 128,
    "seed": 7,
}


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep MOABB/MNE away from ~/mne_data and the system temp folder."""
    monkeypatch.setenv("MNE_DATA", str(tmp_path / "mne_data"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = set(os.environ)
    yield
    for key in set(os.environ) - before:  # FakeDataset registers its temp folder
        if key.startswith("MNE_DATASETS_"):
            del os.environ[key]


def _config(**kwargs: Any) -> MOABBConfig:
    params = {"dataset": "FakeDataset", "dataset_params": dict(FAKE), "mains_freq": 50.0}
    params.update(kwargs)
    return MOABBConfig(**params)


def test_loads_fake_dataset() -> None:
    loader = get_loader(_config())
    assert isinstance(loader, MOABBLoader)
    assert loader.task == "motor_imagery"
    assert loader.subject_ids() == ["S01", "S02", "S03"]
    assert loader.files("S01") == []
    dataset = loader.load().validate()

    assert dataset.name == "moabb"
    assert dataset.subjects == ["S01", "S02", "S03"]
    assert dataset.task == "motor_imagery"
    assert dataset.mains_freq == 50.0
    assert dataset.event_id == {"left_hand": 1, "right_hand": 2}
    assert dataset.ch_names == CHANNELS
    assert dataset.sfreq == 128.0
    assert dataset.n_times == 3 * 128  # trials 0..3 s, end sample excluded (MOABB keeps it)
    assert dataset.info["dataset"] == "FakeDataset"
    summary = dataset.summary()
    # 2 sessions x 1 run x 8 events, alternating classes
    assert summary["left_hand"].tolist() == [8, 8, 8]
    assert summary["right_hand"].tolist() == [8, 8, 8]
    ep = dataset["S02"]
    assert set(ep.metadata["subject"]) == {"S02"}
    assert sorted(set(ep.metadata["session"])) == ["0", "1"]
    assert set(ep.metadata["run"]) == {"0"}
    assert ep.info["line_freq"] == 50.0
    locs = np.array([ch["loc"][:3] for ch in ep.info["chs"]])
    assert np.all(np.isfinite(locs)) and np.all(np.linalg.norm(locs, axis=1) > 0.05)
    X, y, groups = dataset.get_data()
    assert X.shape == (48, len(CHANNELS), 384)
    # volts: MOABB draws 2e-5 V noise; the raw trials are unfiltered (the paradigm's 8-32 Hz
    # band-pass is not applied: eegcrp filters the continuous runs itself)
    assert 1.8e-5 < X.std() < 2.2e-5
    assert np.bincount(y).tolist() == [24, 24]
    assert list(np.unique(groups)) == ["S01", "S02", "S03"]


def test_recording_holds_the_continuous_runs() -> None:
    loader = MOABBLoader(_config(subjects=[1]))
    rec = loader.load_recording("S01")
    # 2 sessions x 1 run of 40 s, the stim channel dropped, 8 trials per run
    assert len(rec.segments) == 2 and not rec.epoched
    assert [seg.n_times for seg in rec.segments] == [40 * 128] * 2
    assert rec.ch_names == CHANNELS and rec.duration == 3.0
    assert rec.trials.groupby("segment").size().tolist() == [8, 8]
    assert list(rec.trials["session"].unique()) == ["0", "1"]
    # trial onsets are the stim events of each run (interval starts at 0 s)
    runs = loader.dataset.get_data(subjects=[1])[1]
    raw = next(iter(next(iter(runs.values())).values()))
    events = mne.find_events(raw, shortest_event=0, verbose="error")
    first = rec.trials[rec.trials["segment"] == 0]
    np.testing.assert_allclose(first["onset"], (events[:, 0] - raw.first_samp) / 128)
    assert first["label"].tolist() == [
        {v: k for k, v in loader.dataset.event_id.items()}[c] for c in events[:, 2]]
    # prepare filters those runs: 8 trials -> 8 windows of 3 s per run
    from eegcrp.config import StudyConfig
    from eegcrp.preprocessing import Preprocessor

    out = Preprocessor(StudyConfig(dataset=_config()).preprocessing).process(rec)
    assert out.windows.get_data().shape == (16, len(CHANNELS), 384)
    assert out.continuous.n_times == 2 * 40 * 128


def test_single_subject_and_selection() -> None:
    loader = MOABBLoader(_config(subjects=[2]))
    assert loader.subject_ids() == ["S02"]
    ep = loader.load_subject("S02")
    assert len(ep) == 16 and ep.event_id == {"left_hand": 1, "right_hand": 2}
    with pytest.raises(DataError, match=r"subjects \[5\] not found"):
        MOABBLoader(_config(subjects=[5])).subject_ids()
    with pytest.raises(DataError, match=r"no subject 'S09' in FakeDataset"):
        loader.load_subject("S09")


def _line_fake_class() -> type:
    """A FakeDataset whose recordings state a 60 Hz mains frequency."""
    from moabb.datasets.fake import FakeDataset

    class LineFakeDataset(FakeDataset):
        def _generate_raw(self, n_events: int, duration: float) -> mne.io.BaseRaw:
            raw = super()._generate_raw(n_events, duration)
            raw.info["line_freq"] = 60.0
            return raw

    return LineFakeDataset


def test_mains_from_recordings(monkeypatch: pytest.MonkeyPatch) -> None:
    import moabb.datasets.fake

    monkeypatch.setattr(moabb.datasets.fake, "LineFakeDataset", _line_fake_class(), raising=False)
    params = dict(FAKE, n_subjects=2, n_sessions=1)
    dataset = MOABBLoader(
        _config(dataset="LineFakeDataset", dataset_params=params, mains_freq=None)
    ).load()
    assert dataset.mains_freq == 60.0
    assert dataset["S01"].info["line_freq"] == 60.0


def test_mains_unknown() -> None:
    params = dict(FAKE, n_subjects=2, n_sessions=1)
    loader = MOABBLoader(_config(dataset_params=params, mains_freq=None))
    with pytest.raises(DataError, match=r"FakeDataset: .*set dataset\.mains_freq to 50 or 60"):
        loader.load()


def test_unknown_channels_for_montage() -> None:
    params = dict(FAKE, n_subjects=2, n_sessions=1)
    loader = MOABBLoader(_config(dataset_params=params, montage="GSN-HydroCel-32"))
    with pytest.raises(DataError, match=r"channel\(s\) \['C3'.*no position in montage"):
        loader.load()


def test_montage_names_canonical() -> None:
    loader = MOABBLoader(_config())
    montage = mne.channels.make_standard_montage("biosemi64")
    assert loader._montage_names(["CZ", "fc3"], montage, "x") == ["Cz", "FC3"]


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match=r"'FakeDatset' is not a dataset class.*FakeDataset"):
        MOABBLoader(_config(dataset="FakeDatset")).subject_ids()


def test_unknown_paradigm() -> None:
    with pytest.raises(DataError, match=r"dataset.paradigm 'LeftRight' is not a paradigm"):
        MOABBLoader(_config(paradigm="LeftRight")).task  # noqa: B018


def test_bad_params() -> None:
    with pytest.raises(DataError, match=r"FakeDataset\(\*\*dataset.dataset_params\) failed"):
        MOABBLoader(_config(dataset_params={"n_runs": 2, "n_events": [1, 2, 3]})).subject_ids()
    with pytest.raises(DataError, match=r"dataset.paradigm_params .* failed|paradigm_params"):
        MOABBLoader(_config(paradigm_params={"nope": 1})).task  # noqa: B018


def test_paradigm_does_not_fit_dataset() -> None:
    loader = MOABBLoader(_config(paradigm="P300"))
    with pytest.raises(DataError, match=r"paradigm P300 cannot be used with dataset FakeDataset"):
        loader.load()


def test_task_not_inferable() -> None:
    params = dict(FAKE, paradigm="p300", event_list=["Target", "NonTarget"])
    loader = MOABBLoader(_config(paradigm="P300", dataset_params=params))
    with pytest.raises(DataError, match=r"cannot infer the task .* set dataset.task"):
        loader.task  # noqa: B018
    loader = MOABBLoader(_config(paradigm="P300", dataset_params=params, task="internal_attention"))
    assert loader.task == "internal_attention"


def test_missing_moabb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moabb.datasets", None)
    with pytest.raises(DataError, match=r"pip install eegcrp\[moabb\]"):
        MOABBLoader(_config()).subject_ids()

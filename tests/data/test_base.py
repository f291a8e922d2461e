"""Dataset type and the bad-input checks every loader relies on."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.data.base import DataError, EEGDataset, make_epochs, make_montage
from tests.helpers import synthetic_dataset


def _epochs(data=None, ch_names=("C3", "Cz", "C4"), labels=("a", "b"), subject="s1"):
    data = np.zeros((len(labels), len(ch_names), 64)) if data is None else data
    return make_epochs(data, ch_names=ch_names, sfreq=128, labels=list(labels),
                       event_id={"a": 1, "b": 2}, subject=subject, source="file.x")


def test_make_epochs_sets_montage_metadata_and_events() -> None:
    ep = _epochs()
    assert ep.get_montage() is not None
    assert list(ep.metadata["subject"]) == ["s1", "s1"]
    assert list(ep.events[:, 2]) == [1, 2]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_names_source_and_fix(bad: float) -> None:
    data = np.zeros((2, 3, 64))
    data[1, 2, 5] = bad
    with pytest.raises(DataError, match=r"file\.x \(subject s1\) contains 1 NaN/Inf.*interpolate"):
        _epochs(data)


def test_unknown_channel_names_are_listed() -> None:
    with pytest.raises(DataError, match=r"\['XX1', 'EMG'\] have no position.*dataset\.rename"):
        _epochs(ch_names=("C3", "XX1", "EMG"))


def test_unknown_montage_name() -> None:
    with pytest.raises(DataError, match="unknown montage 'standard_9999'"):
        make_montage("standard_9999")


def test_labels_outside_event_id() -> None:
    with pytest.raises(DataError, match=r"labels \['c'\] are not in event_id"):
        _epochs(labels=("a", "c"))


def test_one_subject_is_rejected_for_loso() -> None:
    ds = EEGDataset("x", {"s1": _epochs()}, "motor_imagery")
    with pytest.raises(DataError, match=r"has 1 subject.*at least 2"):
        ds.validate()


def test_one_class_is_rejected() -> None:
    ds = EEGDataset("x", {"s1": _epochs(labels=("a", "a")), "s2": _epochs(labels=("a", "a"),
                                                                           subject="s2")},
                    "motor_imagery")
    with pytest.raises(DataError, match=r"only class\(es\) \['a'\]"):
        ds.validate()


def test_mismatched_channels_between_subjects() -> None:
    ds = EEGDataset("x", {"s1": _epochs(), "s2": _epochs(ch_names=("C3", "Cz", "Pz"),
                                                         subject="s2")}, "motor_imagery")
    with pytest.raises(DataError, match=r"subject s2 has other channels.*missing \['C4'\]"):
        ds.validate()


def test_any_task_label_but_not_any_text() -> None:
    assert EEGDataset("x", {}, "sleep").task == "sleep"  # a label of its own
    with pytest.raises(DataError, match="task 'sleep stages' is not a label"):
        EEGDataset("x", {}, "sleep stages")


def test_get_data_and_summary() -> None:
    ds = synthetic_dataset(n_subjects=3, n_trials=6)
    X, y, groups = ds.get_data(["s00", "s02"])
    assert X.shape == (12, 4, 384) and X.dtype == np.float32
    assert list(np.unique(groups)) == ["s00", "s02"]
    assert set(y) == {0, 1}
    table = ds.summary()
    assert list(table.columns[:2]) == ["a", "b"] and table.loc["s01", "n_epochs"] == 6

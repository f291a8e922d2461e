"""Recording: continuous segments + trials table, its checks and its raw trial epochs."""

from __future__ import annotations

import mne
import numpy as np
import pandas as pd
import pytest

from eegcrp.data.base import (
    DataError,
    Recording,
    is_bipolar,
    make_montage,
    make_segment,
    mark_bipolar,
)

CH = ["C3", "Cz", "C4"]
SFREQ = 100.0


def _segment(n_times: int, seed: int = 0, ch=CH, montage="standard_1005") -> mne.io.RawArray:
    data = np.random.default_rng(seed).normal(0, 1e-5, (len(ch), n_times))
    raw = mne.io.RawArray(data, mne.create_info(list(ch), SFREQ, "eeg"), verbose="error")
    return make_segment(raw, montage=montage, line_freq=50.0, where="f.edf")


def _recording(segments=None, trials=None, duration=2.0, **kwargs) -> Recording:
    segments = segments or [_segment(1000), _segment(600, seed=1)]
    if trials is None:
        trials = pd.DataFrame({"segment": [1, 0, 0], "onset": [1.0, 5.0, 0.5],
                               "label": ["b", "a", "b"], "run": [2, 1, 1]})
    return Recording("s1", segments, trials, duration, {"a": 1, "b": 2}, source="f.edf",
                     **kwargs)


def test_trials_are_sorted_and_cut_from_the_segments() -> None:
    rec = _recording().validate()
    assert rec.trials["segment"].tolist() == [0, 0, 1]
    assert rec.trials["onset"].tolist() == [0.5, 5.0, 1.0]
    assert rec.loader_columns == ["run"] and rec.n_times == 200 and rec.sfreq == SFREQ
    assert rec.starts().tolist() == [50, 500, 100]
    ep = rec.to_epochs()
    assert ep.get_data().shape == (3, 3, 200)
    np.testing.assert_array_equal(ep.get_data()[1], rec.segments[0].get_data()[:, 500:700])
    np.testing.assert_array_equal(ep.get_data()[2], rec.segments[1].get_data()[:, 100:300])
    assert list(ep.metadata.columns) == ["subject", "trial", "segment", "trial_onset", "run"]
    assert ep.metadata["trial"].tolist() == [0, 1, 2] and ep.metadata["run"].tolist() == [1, 1, 2]
    assert ep.events[:, 2].tolist() == [2, 1, 2] and ep.event_id == {"a": 1, "b": 2}
    assert ep.get_montage() is not None and ep.info["line_freq"] == 50.0


def test_trial_outside_its_segment() -> None:
    trials = pd.DataFrame({"segment": [1], "onset": [5.0], "label": ["a"]})
    with pytest.raises(DataError, match=r"f\.edf \(subject s1\): 1 trial\(s\) lie outside their "
                                        r"segment.*5\.000 s \+ 2 s in a segment of 6\.000 s\); "
                                        r"drop trials"):
        _recording(trials=trials).validate()


def test_unknown_labels_missing_columns_no_trials() -> None:
    trials = pd.DataFrame({"segment": [0], "onset": [0.0], "label": ["c"]})
    with pytest.raises(DataError, match=r"labels \['c'\] are not in event_id"):
        _recording(trials=trials).validate()
    with pytest.raises(DataError, match=r"lacks column\(s\) \['label'\]"):
        _recording(trials=pd.DataFrame({"segment": [0], "onset": [0.0]}))
    empty = pd.DataFrame({"segment": [], "onset": [], "label": []})
    with pytest.raises(DataError, match="no trials found"):
        _recording(trials=empty).validate()


def test_non_finite_data_names_the_segment() -> None:
    bad = _segment(600)
    bad._data[1, 7] = np.inf
    with pytest.raises(DataError, match=r"f\.edf \(subject s1\) contains 1 NaN/Inf value\(s\) in "
                                        r"segment 1; repair"):
        _recording(segments=[_segment(1000), bad]).validate()


def test_channels_positions_and_rates_must_agree() -> None:
    with pytest.raises(DataError, match=r"segment 1 has channels \['C3', 'Cz', 'Pz'\]"):
        _recording(segments=[_segment(1000), _segment(600, ch=["C3", "Cz", "Pz"])]).validate()
    unplaced = [_segment(1000, montage=None), _segment(600, montage=None)]
    with pytest.raises(DataError, match=r"channel\(s\) \['C3', 'Cz', 'C4'\] have no position"):
        _recording(segments=unplaced).validate()
    other = _segment(600)
    other.set_channel_types({"Cz": "eog"}, verbose="error")
    with pytest.raises(DataError, match=r"segment 1 has channels|not EEG"):
        _recording(segments=[other, other]).validate()


def test_epoched_recordings_hold_one_trial_per_segment() -> None:
    data = np.random.default_rng(0).normal(0, 1e-5, (4, 3, 200))
    info = mne.create_info(CH, SFREQ, "eeg")
    info.set_montage(make_montage("standard_1005"))
    mark_bipolar(info)
    rec = Recording.from_trials(data, info, ["a", "b", "b", "a"], {"a": 1, "b": 2}, "s1",
                                metadata=pd.DataFrame({"session": list("xxyy")}),
                                prefiltered=(8.0, 30.0)).validate()
    assert rec.epoched and rec.duration == 2.0 and len(rec.segments) == 4
    assert rec.trials["session"].tolist() == list("xxyy")
    ep = rec.to_epochs()
    np.testing.assert_array_equal(ep.get_data(), data)
    assert is_bipolar(ep.info)
    # an epoched recording whose trial does not cover its segment is inconsistent
    trials = pd.DataFrame({"segment": [0, 1], "onset": [0.0, 0.0], "label": ["a", "b"]})
    with pytest.raises(DataError, match="exactly one trial per segment"):
        _recording(trials=trials, epoched=True).validate()
    # round trip through epochs
    back = Recording.from_epochs(ep)
    assert back.subject == "s1" and back.trials["label"].tolist() == ["a", "b", "b", "a"]
    assert back.loader_columns == ["session"] and back.epoched

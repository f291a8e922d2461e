"""Loading the real recordings under $EEGCRP_DATA: shapes, channels, classes, sfreq."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from eegcrp.config import load_config
from eegcrp.data import DataError, get_loader
from eegcrp.data.base import is_bipolar
from tests.helpers import real_folder


def _loader(kind: str, **params):
    return get_loader(load_config({"dataset": {"kind": kind, **params}}).dataset)


@pytest.mark.realdata
def test_bciciv2b_all_subjects() -> None:
    real_folder("bciciv2b_epoched")
    ds = _loader("bciciv2b").load()
    assert ds.subjects == [f"B{k:02d}" for k in range(1, 10)]
    assert ds.ch_names == ["C3", "Cz", "C4"] and ds.sfreq == 250.0 and ds.n_times == 1000
    assert ds.classes == ["left_hand", "right_hand"] and ds.mains_freq == 50.0
    table = ds.summary()
    assert (table["left_hand"] == 180).all() and (table["right_hand"] == 180).all()
    ep = ds["B03"]
    assert list(ep.metadata["session"].unique()) == ["01T", "02T", "03T"]
    assert is_bipolar(ep.info)
    # units are volts: tens of microvolts at most after the source's 8-30 Hz filter
    assert 1e-7 < np.std(ep.get_data()) < 1e-4


@pytest.mark.realdata
def test_bciciv2b_session_selection_and_label_sanity() -> None:
    real_folder("bciciv2b_epoched")
    ds = _loader("bciciv2b", subjects=[1], sessions=["02T"]).load()
    ep = ds["B01"]
    assert len(ep) == 120
    # contralateral mu ERD: log power C4 - C3 lower for left than right hand imagery
    from scipy.signal import welch

    f, p = welch(ep.get_data(), fs=250, nperseg=250)
    mu = (f >= 8) & (f <= 13)
    lat = np.log(p[:, 2, mu].mean(-1)) - np.log(p[:, 0, mu].mean(-1))
    y = ep.events[:, 2]
    assert lat[y == 1].mean() < lat[y == 2].mean()


@pytest.mark.realdata
def test_bciciv2b_missing_session_and_subject() -> None:
    real_folder("bciciv2b_epoched")
    with pytest.raises(DataError, match=r"no subject .* has all sessions"):
        _loader("bciciv2b", sessions=["07T"]).subject_ids()
    with pytest.raises(DataError, match=r"subjects \[12\] not found"):
        _loader("bciciv2b", subjects=[12]).subject_ids()


@pytest.mark.realdata
def test_bciciv2b_corrupt_and_wrong_files(tmp_path) -> None:
    src = real_folder("bciciv2b_epoched")
    data = (src / "B0101T.mat").read_bytes()
    (tmp_path / "B0101T.mat").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"B0101T\.mat could not be read.*corrupt or truncated"):
        _loader("bciciv2b", path=str(tmp_path), sessions=["01T"]).load()
    import scipy.io

    scipy.io.savemat(tmp_path / "B0101T.mat", {"eeg": np.zeros((10, 3, 2))})
    with pytest.raises(DataError, match="has no variable 'data'"):
        _loader("bciciv2b", path=str(tmp_path), sessions=["01T"]).load()
    bad = np.zeros((100, 3, 2))
    bad[5, 1, 0] = np.nan
    scipy.io.savemat(tmp_path / "B0101T.mat", {"data": bad, "label": np.array([[1], [2]])})
    scipy.io.savemat(tmp_path / "B0201T.mat", {"data": bad * 0, "label": np.array([[1], [2]])})
    with pytest.raises(DataError, match=r"subject B01\) contains 1 NaN/Inf"):
        _loader("bciciv2b", path=str(tmp_path), sessions=["01T"]).load()


def test_empty_or_missing_folder(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no recognised files"):
        _loader("bciciv2b", path=str(tmp_path)).subject_ids()
    with pytest.raises(DataError, match=r"does not exist; set dataset\.path"):
        _loader("eegmat", path=str(tmp_path / "missing")).subject_ids()


@pytest.mark.realdata
def test_eegmat_all_subjects() -> None:
    real_folder("eegmat_arithmetic_21ch")
    loader = _loader("eegmat")
    assert len(loader.subject_ids()) == 24
    ds = loader.load(subjects=["S00", "S04", "S10"])
    assert ds.classes == ["rest", "arithmetic"] and ds.sfreq == 500.0
    assert ds.task == "internal_attention" and ds.mains_freq == 50.0
    assert len(ds.ch_names) == 19 and {"T7", "T8", "P7", "P8"} <= set(ds.ch_names)
    assert not any(c.startswith("EEG") or c in ("T3", "ECG") for c in ds.ch_names)
    assert ds.n_times == 30 * 500
    table = ds.summary()
    # rest 182 s (S04: 170, S10: 188) -> 6/5/6 trials of 30 s; arithmetic 62 s -> 2
    assert table["rest"].tolist() == [6, 5, 6] and (table["arithmetic"] == 2).all()
    # each file is one continuous segment; trials are consecutive 30-s pieces of it
    rec = loader.load_recording("S04")
    assert [seg.n_times for seg in rec.segments] == [170 * 500, 62 * 500]
    assert rec.trials["onset"].tolist() == [0, 30, 60, 90, 120, 0, 30]
    assert rec.trials["piece"].tolist() == [0, 1, 2, 3, 4, 0, 1]
    assert rec.trials["file"].tolist() == ["Subject04_1.edf"] * 5 + ["Subject04_2.edf"] * 2
    assert not is_bipolar(rec.segments[0].info) and rec.line_freq == 50.0


@pytest.mark.realdata
def test_eegmat_balance_and_truncated_file(tmp_path) -> None:
    src = real_folder("eegmat_arithmetic_21ch")
    ds = _loader("eegmat", subjects=[1], balance=True).load()
    assert ds.summary()[["rest", "arithmetic"]].values.tolist() == [[2, 2]]
    shutil.copy(src / "Subject00_1.edf", tmp_path)
    data = (src / "Subject00_2.edf").read_bytes()
    (tmp_path / "Subject00_2.edf").write_bytes(data[:1000])
    with pytest.raises(DataError, match=r"Subject00_2\.edf could not be read as EDF"):
        _loader("eegmat", path=str(tmp_path)).load()


#: T1 (left) and T2 (right) imagery trials per subject, from the folder's MANIFEST.md.
EEGMMIDB_COUNTS = {"S001": (23, 22), "S002": (23, 22), "S003": (23, 22), "S004": (23, 22),
                   "S005": (21, 24), "S006": (24, 21), "S007": (23, 22), "S008": (22, 23),
                   "S009": (24, 21), "S010": (24, 21)}


@pytest.mark.realdata
def test_eegmmidb_ten_subjects() -> None:
    real_folder("eegmmidb_mi")
    loader = _loader("eegmmidb")
    assert loader.path.name == "eegmmidb_mi"
    assert loader.subject_ids() == list(EEGMMIDB_COUNTS)
    for subject, (left, right) in EEGMMIDB_COUNTS.items():
        rec = loader.load_recording(subject)
        counts = rec.trials["label"].value_counts()
        assert (counts["left_fist"], counts["right_fist"]) == (left, right), subject
    # the last subject's runs: continuous segments, 64 standard channels, 160 Hz, 60 Hz mains
    assert len(rec.segments) == 3 and not rec.epoched and rec.sfreq == 160.0
    assert len(rec.ch_names) == 64 and {"FC5", "Cz", "Iz"} <= set(rec.ch_names)
    assert rec.line_freq == 60.0 and rec.duration == 4.0
    assert rec.trials["run"].value_counts().to_dict() == {4: 15, 8: 15, 12: 15}
    assert all(seg.n_times >= 120 * 160 for seg in rec.segments)


@pytest.mark.realdata
def test_eegmmidb_flat_layout() -> None:
    real_folder("eegmmidb_mi")
    ds = _loader("eegmmidb", subjects=[1]).load()
    assert ds.subjects == ["S001"] and ds.sfreq == 160.0 and len(ds.ch_names) == 64
    assert ds.n_times == 640 and ds.mains_freq == 60.0
    table = ds.summary()
    assert (table.loc["S001", "left_fist"], table.loc["S001", "right_fist"]) == (23, 22)
    assert ds["S001"].metadata["run"].value_counts().to_dict() == {4: 15, 8: 15, 12: 15}
    # raw trials are cuts of the EDF at the T1/T2 annotations (tmin 0, 4 s)
    import mne

    raw = mne.io.read_raw_edf(real_folder("eegmmidb_mi") / "S001R04.edf", preload=True,
                              verbose="error")
    onset = next(o for o, d in zip(raw.annotations.onset, raw.annotations.description,
                                   strict=True) if d in ("T1", "T2"))
    start = int(round(onset * 160))
    np.testing.assert_allclose(ds["S001"].get_data()[0],
                               raw.get_data(picks="eeg")[:, start:start + 640])


@pytest.mark.realdata
def test_eegmmidb_eegbci_layout(tmp_path) -> None:
    src = real_folder("eegmmidb_mi")
    nested = tmp_path / "MNE-eegbci-data" / "files" / "eegmmidb" / "1.0.0" / "S001"
    nested.mkdir(parents=True)
    for run in (4, 8):
        (nested / f"S001R{run:02d}.edf").symlink_to((src / f"S001R{run:02d}.edf").resolve())
    ds = _loader("eegmmidb", path=str(tmp_path), runs=[4, 8]).load()
    assert len(ds["S001"]) == 30
    with pytest.raises(DataError, match="not left/right fist imagery runs"):
        _loader("eegmmidb", path=str(tmp_path), runs=[3]).subject_ids()


@pytest.mark.realdata
def test_eegmat_files_of_one_class_only_say_so(tmp_path) -> None:
    src = real_folder("eegmat_arithmetic_21ch")
    for n in ("00", "01"):
        (tmp_path / f"Subject{n}_1.edf").symlink_to(src / f"Subject{n}_1.edf")
    with pytest.raises(DataError, match=r"none has both classes \(found only \['rest'\]\)"):
        _loader("eegmat", path=str(tmp_path)).subject_ids()

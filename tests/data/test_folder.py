"""Generic folder loader on small FIF, EDF, BrainVision, EEGLAB and XDF files written here."""

from __future__ import annotations

import logging
import struct
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pytest
import scipy.io

from eegcrp.config import FolderConfig
from eegcrp.data.base import DataError
from eegcrp.data.folder import FolderLoader
from eegcrp.data.registry import get_loader
from eegcrp.data.xdf import read_xdf

SFREQ = 128.0
SECONDS = 20.0
EEG = ["C3", "Cz", "C4"]
#: Marker times (s) and names in every file: 3 left, 2 right, one unmapped, one too late.
MARKERS = [(2.0, "left"), (5.0, "right"), (8.0, "left"), (11.0, "right"), (14.0, "left"),
           (17.0, "other"), (19.5, "right")]
CODES = {"left": 1, "right": 2, "other": 7}
EVENTS = {"left": "left_hand", "right": "right_hand", "1": "left_hand", "2": "right_hand"}
TMIN, TMAX = -0.5, 2.0
N_TIMES = 320  # round((TMAX - TMIN) * SFREQ)


def _signal(n_channels: int, seed: int) -> np.ndarray:
    """Random data in volts (~10 µV)."""
    return np.random.default_rng(seed).normal(0.0, 1e-5, (n_channels, int(SECONDS * SFREQ)))


def _annotations() -> mne.Annotations:
    onsets, names = zip(*MARKERS, strict=True)
    return mne.Annotations(list(onsets), [0.0] * len(onsets), list(names))


def _raw(ch_names: list[str] = EEG, seed: int = 0, annotate: bool = True) -> mne.io.RawArray:
    raw = mne.io.RawArray(_signal(len(ch_names), seed), mne.create_info(ch_names, SFREQ, "eeg"),
                          verbose="error")
    if annotate:
        raw.set_annotations(_annotations())
    return raw


def _write_fif(path: Path, seed: int = 0, ch_names: list[str] = EEG) -> mne.io.RawArray:
    """EEG + EOG + stim channel with the marker codes (no annotations), line_freq 50 Hz."""
    data = np.vstack([_signal(len(ch_names) + 1, seed), np.zeros((1, int(SECONDS * SFREQ)))])
    for time, name in MARKERS:
        data[-1, round(time * SFREQ)] = CODES[name]
    info = mne.create_info([*ch_names, "EOG1", "STI"], SFREQ,
                           ["eeg"] * len(ch_names) + ["eog", "stim"])
    info["line_freq"] = 50.0
    raw = mne.io.RawArray(data, info, verbose="error")
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.save(path, verbose="error")
    return raw


def _export(path: Path, raw: mne.io.BaseRaw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, overwrite=True, verbose="error")


def _write_set(path: Path, seed: int = 0) -> np.ndarray:
    """Minimal continuous EEGLAB file (data in µV inside the .set)."""
    data = _signal(len(EEG), seed)
    chanlocs = np.zeros(len(EEG), dtype=[("labels", object)])
    for i, name in enumerate(EEG):
        chanlocs[i]["labels"] = name
    event = np.zeros(len(MARKERS), dtype=[("type", object), ("latency", float),
                                          ("duration", float)])
    for i, (time, name) in enumerate(MARKERS):
        event[i] = (name, time * SFREQ + 1, 0.0)  # EEGLAB latencies are 1-based samples
    n = data.shape[1]
    eeg = {
        "setname": "test", "nbchan": len(EEG), "pnts": n, "trials": 1, "srate": SFREQ,
        "xmin": 0.0, "xmax": (n - 1) / SFREQ, "data": (data * 1e6).astype(np.float32),
        "chanlocs": chanlocs, "event": event, "epoch": np.array([]),
        "icawinv": np.array([]), "icasphere": np.array([]), "icaweights": np.array([]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"EEG": eeg}, appendmat=False)
    return data


# --------------------------------------------------------------------------- XDF writer
def _varlen(n: int) -> bytes:
    return b"\x01" + struct.pack("<B", n) if n < 256 else b"\x04" + struct.pack("<I", n)


def _chunk(tag: int, content: bytes, stream_id: int | None = None) -> bytes:
    body = struct.pack("<H", tag)
    if stream_id is not None:
        body += struct.pack("<I", stream_id)
    body += content
    return _varlen(len(body)) + body


def _stream_header(name: str, kind: str, n_channels: int, srate: float, fmt: str,
                   channels: list[tuple[str, str, str]] | None = None) -> bytes:
    desc = ""
    if channels:
        desc = "<channels>" + "".join(
            f"<channel><label>{label}</label><unit>{unit}</unit><type>{ctype}</type></channel>"
            for label, unit, ctype in channels
        ) + "</channels>"
    return (
        '<?xml version="1.0"?><info>'
        f"<name>{name}</name><type>{kind}</type><channel_count>{n_channels}</channel_count>"
        f"<nominal_srate>{srate}</nominal_srate><channel_format>{fmt}</channel_format>"
        f"<source_id>{name}-1</source_id><version>1.1</version>"
        f"<created_at>100.0</created_at><uid>{name}-uid</uid><session_id>x</session_id>"
        f"<hostname>lab</hostname><desc>{desc}</desc></info>"
    ).encode()


def _footer(first: float, last: float, count: int) -> bytes:
    return (
        '<?xml version="1.0"?><info>'
        f"<first_timestamp>{first}</first_timestamp><last_timestamp>{last}</last_timestamp>"
        f"<sample_count>{count}</sample_count></info>"
    ).encode()


def _write_xdf(path: Path, seed: int = 0, *, labels: bool = True,
               marker_name: str = "Triggers") -> np.ndarray:
    """EEG stream (float32, µV, plus an AUX channel) and a string marker stream."""
    t0 = 1000.0
    data_v = _signal(len(EEG) + 1, seed)
    values = (data_v * 1e6).astype(np.float32).T  # samples x channels, µV
    n = values.shape[0]
    stamps = t0 + np.arange(n) / SFREQ
    channels = [(c, "microvolts", "EEG") for c in EEG] + [("AUX1", "", "AUX")]
    eeg_samples = _varlen(n) + b"".join(
        b"\x08" + struct.pack("<d", ts) + row.astype("<f4").tobytes()
        for ts, row in zip(stamps, values, strict=True)
    )
    marker_samples = _varlen(len(MARKERS)) + b"".join(
        b"\x08" + struct.pack("<d", t0 + time) + _varlen(len(name)) + name.encode()
        for time, name in MARKERS
    )
    content = b"XDF:" + _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    content += _chunk(2, _stream_header("BrainAmp", "EEG", len(EEG) + 1, SFREQ, "float32",
                                        channels if labels else None), 1)
    content += _chunk(2, _stream_header(marker_name, "Markers", 1, 0, "string"), 2)
    content += _chunk(3, eeg_samples, 1)
    content += _chunk(3, marker_samples, 2)
    content += _chunk(6, _footer(stamps[0], stamps[-1], n), 1)
    content += _chunk(6, _footer(t0 + MARKERS[0][0], t0 + MARKERS[-1][0], len(MARKERS)), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return data_v[: len(EEG)]


def _config(folder: Path, **kwargs: Any) -> FolderConfig:
    params: dict[str, Any] = {
        "path": folder, "task": "motor_imagery", "events": EVENTS, "tmin": TMIN, "tmax": TMAX,
        "channels": EEG, "mains_freq": 50.0,
    }
    params.update(kwargs)
    return FolderConfig(**params)


def _start(time: float) -> int:
    return round((time + TMIN) * SFREQ)


# --------------------------------------------------------------------------- tests
def test_all_formats(tmp_path: Path) -> None:
    pytest.importorskip("pyxdf")
    pytest.importorskip("pybv")
    pytest.importorskip("edfio")
    fif = [_write_fif(tmp_path / f"sub-01/ses-1/sub-01_ses-1_run-{r}_raw.fif", seed=r)
           for r in (1, 2)]
    _export(tmp_path / "sub-02/sub-02_eeg.edf", _raw(seed=2))
    _export(tmp_path / "sub-03/sub-03_eeg.vhdr", _raw(seed=3))
    set_data = _write_set(tmp_path / "sub-04/sub-04_eeg.set", seed=4)
    xdf_data = _write_xdf(tmp_path / "sub-05/sub-05_eeg.xdf", seed=5)
    (tmp_path / "sub-05/notes.txt").write_text("ignored")

    loader = get_loader(_config(tmp_path))
    assert isinstance(loader, FolderLoader)
    assert loader.subject_ids() == ["01", "02", "03", "04", "05"]
    assert [p.name for p in loader.files("01")] == ["sub-01_ses-1_run-1_raw.fif",
                                                    "sub-01_ses-1_run-2_raw.fif"]
    dataset = loader.load().validate()

    assert dataset.task == "motor_imagery"
    assert dataset.mains_freq == 50.0
    assert dataset.event_id == {"left_hand": 1, "right_hand": 2}
    assert dataset.ch_names == EEG
    assert dataset.sfreq == SFREQ
    assert dataset.n_times == N_TIMES
    summary = dataset.summary()
    # per file: 3 left, 2 right; "other" is unmapped and the marker at 19.5 s runs past the end
    assert summary["left_hand"].tolist() == [6, 3, 3, 3, 3]
    assert summary["right_hand"].tolist() == [4, 2, 2, 2, 2]

    ep = dataset["01"]
    assert list(ep.metadata["subject"].unique()) == ["01"]
    assert list(ep.metadata["session"]) == ["1"] * 10
    assert list(ep.metadata["run"]) == ["1"] * 5 + ["2"] * 5
    assert ep.metadata["file"].iloc[-1] == "sub-01/ses-1/sub-01_ses-1_run-2_raw.fif"
    assert list(dataset["02"].metadata["run"]) == [""] * 5
    # trials hold the right samples (volts) for every format
    first = _start(MARKERS[0][0])
    np.testing.assert_allclose(ep.get_data()[5], fif[1].get_data()[:3, first:first + N_TIMES])
    second = _start(MARKERS[1][0])
    np.testing.assert_allclose(dataset["04"].get_data()[1],
                               set_data[:, second:second + N_TIMES], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(dataset["05"].get_data()[1],
                               xdf_data[:, second:second + N_TIMES], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(dataset["02"].get_data()[0],
                               _signal(3, 2)[:, first:first + N_TIMES], atol=1e-8)
    np.testing.assert_allclose(dataset["03"].get_data()[0],
                               _signal(3, 3)[:, first:first + N_TIMES], atol=1e-8)
    for _, epochs in dataset:
        assert list(epochs.events[:, 2]) == [1, 2, 1, 2, 1] * (len(epochs) // 5)
        locs = np.array([ch["loc"][:3] for ch in epochs.info["chs"]])
        assert np.all(np.linalg.norm(locs, axis=1) > 0.05)


def test_all_eeg_channels_and_line_freq(tmp_path: Path) -> None:
    _write_fif(tmp_path / "sub-7_raw.fif")
    loader = FolderLoader(_config(tmp_path, channels=None, mains_freq=None, tmin=0.0, tmax=1.0))
    dataset = loader.load()
    assert dataset.ch_names == EEG  # EOG and stim channels are not EEG
    assert dataset.n_times == 128
    assert dataset.mains_freq == 50.0  # from the FIF's line_freq
    assert dataset["7"].info["line_freq"] == 50.0


def test_rename_and_subject_numbers(tmp_path: Path) -> None:
    names = ["EEG C3", "EEG Cz", "EEG C4"]
    for sid in ("P1", "P10", "P2"):
        _write_fif(tmp_path / f"{sid}_raw.fif", ch_names=names)
    config = _config(tmp_path, subject_regex=r"(P\d+)_raw", channels=None,
                     rename={n: n[4:] for n in names} | {"absent": "x"})
    loader = FolderLoader(config)
    assert loader.subject_ids() == ["P1", "P2", "P10"]
    assert loader.load_subject("P10").ch_names == EEG
    config.subjects = [3]
    assert FolderLoader(config).subject_ids() == ["P10"]
    with pytest.raises(DataError, match=r"subjects \[4\] not found"):
        FolderLoader(config.model_copy(update={"subjects": [4]})).subject_ids()


def test_xdf_reader(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("pyxdf")
    data = _write_xdf(tmp_path / "rec.xdf", seed=1)
    raw = read_xdf(tmp_path / "rec.xdf")
    assert raw.ch_names == [*EEG, "AUX1"]
    assert raw.get_channel_types() == ["eeg", "eeg", "eeg", "misc"]
    assert raw.info["sfreq"] == SFREQ
    np.testing.assert_allclose(raw.get_data()[:3], data, rtol=1e-5, atol=1e-12)
    assert list(raw.annotations.description) == [name for _, name in MARKERS]
    np.testing.assert_allclose(raw.annotations.onset, [t for t, _ in MARKERS], atol=1e-6)
    # without labels: Ch1..ChN (assumed µV), to be renamed by the user
    _write_xdf(tmp_path / "nolabels.xdf", labels=False)
    with caplog.at_level(logging.WARNING, logger="eegcrp.data.xdf"):
        raw = read_xdf(tmp_path / "nolabels.xdf", marker_stream="Triggers")
    assert raw.ch_names == ["Ch1", "Ch2", "Ch3", "Ch4"]
    assert "naming them Ch1..Ch4" in caplog.text


def test_int_event_keys_and_required_task(tmp_path: Path) -> None:
    config = _config(tmp_path, events={1: "left_hand", 2: "right_hand"})
    assert config.events == {"1": "left_hand", "2": "right_hand"}
    with pytest.raises(ValueError, match=r"task"):
        FolderConfig(path=tmp_path, events=EVENTS, tmax=1.0)


# --------------------------------------------------------------------------- errors
def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist; set dataset.path"):
        FolderLoader(_config(tmp_path / "nope")).subject_ids()


def test_folder_without_recordings(tmp_path: Path) -> None:
    (tmp_path / "sub-01").mkdir()
    (tmp_path / "sub-01" / "notes.txt").write_text("x")
    (tmp_path / "sub-01" / "data.csv").write_text("1,2")
    with pytest.raises(DataError, match=r"no recognised recordings in .*dataset.pattern"):
        FolderLoader(_config(tmp_path)).subject_ids()


def test_files_not_matching_subject_regex(tmp_path: Path) -> None:
    _write_fif(tmp_path / "recording_raw.fif")
    with pytest.raises(DataError, match=r"'recording_raw.fif' do not match .*fix the regex"):
        FolderLoader(_config(tmp_path)).subject_ids()


@pytest.mark.parametrize(("regex", "message"), [("sub-[0-9+", "not a valid regular"),
                                                ("sub-[0-9]+", "has no group")])
def test_bad_subject_regex(tmp_path: Path, regex: str, message: str) -> None:
    _write_fif(tmp_path / "sub-1_raw.fif")
    with pytest.raises(DataError, match=message):
        FolderLoader(_config(tmp_path, subject_regex=regex)).subject_ids()


def test_corrupt_fif(tmp_path: Path) -> None:
    (tmp_path / "sub-1_raw.fif").write_bytes(b"\x00\x01 not a fif file" * 50)
    with pytest.raises(DataError, match=r"sub-1_raw.fif could not be read .*corrupt"):
        FolderLoader(_config(tmp_path)).load_subject("1")


@pytest.mark.parametrize(("keep", "message"), [(600, "could not be read"),
                                               (0.8, "is truncated: the header declares 20 "
                                                     "data record")])
def test_truncated_edf(tmp_path: Path, keep: float, message: str) -> None:
    pytest.importorskip("edfio")
    path = tmp_path / "sub-1.edf"
    _export(path, _raw())
    content = path.read_bytes()
    path.write_bytes(content[: int(keep if keep > 1 else keep * len(content))])
    with pytest.raises(DataError, match=rf"sub-1.edf {message}"):
        FolderLoader(_config(tmp_path)).load_subject("1")


def test_brainvision_without_data_file(tmp_path: Path) -> None:
    pytest.importorskip("pybv")
    _export(tmp_path / "sub-1.vhdr", _raw())
    (tmp_path / "sub-1.eeg").unlink()
    with pytest.raises(DataError, match=r"sub-1.vhdr could not be read .*\.vmrk and \.eeg"):
        FolderLoader(_config(tmp_path)).load_subject("1")


def test_corrupt_xdf(tmp_path: Path) -> None:
    pytest.importorskip("pyxdf")
    (tmp_path / "sub-1.xdf").write_bytes(b"XYZ:" + b"\x00" * 64)
    with pytest.raises(DataError, match=r"sub-1.xdf could not be read as XDF"):
        FolderLoader(_config(tmp_path)).load_subject("1")


def test_truncated_xdf(tmp_path: Path) -> None:
    pytest.importorskip("pyxdf")
    path = tmp_path / "sub-1.xdf"
    _write_xdf(path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"sub-1.xdf (is damaged|: no stream|could not be read)"):
        FolderLoader(_config(tmp_path)).load_subject("1")


def test_xdf_missing_stream(tmp_path: Path) -> None:
    pytest.importorskip("pyxdf")
    _write_xdf(tmp_path / "sub-1.xdf")
    config = _config(tmp_path, xdf_marker_stream="Markers-Missing")
    with pytest.raises(DataError, match=r"no stream named 'Markers-Missing' \(streams: "
                                        r"\[\"'BrainAmp' \(type 'EEG'\)\".*xdf_marker_stream"):
        FolderLoader(config).load_subject("1")
    with pytest.raises(DataError, match=r"no stream named 'EEG2'.*dataset.xdf_eeg_stream"):
        FolderLoader(_config(tmp_path, xdf_eeg_stream="EEG2")).load_subject("1")


def test_pyxdf_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_xdf(tmp_path / "sub-1.xdf")
    monkeypatch.setitem(sys.modules, "pyxdf", None)
    with pytest.raises(DataError, match=r"sub-1.xdf: reading XDF needs pyxdf .*eegcrp\[xdf\]"):
        FolderLoader(_config(tmp_path)).load_subject("1")


def test_unknown_channel_names(tmp_path: Path) -> None:
    _write_fif(tmp_path / "sub-1_raw.fif", ch_names=["C3", "Foo", "C4"])
    with pytest.raises(DataError, match=r"sub-1_raw.fif \(subject 1\): channel\(s\) \['Foo'\] "
                                        r"have no position.*dataset.rename"):
        FolderLoader(_config(tmp_path, channels=None)).load_subject("1")


def test_missing_configured_channels(tmp_path: Path) -> None:
    _write_fif(tmp_path / "sub-1_raw.fif")
    with pytest.raises(DataError, match=r"sub-1_raw.fif lacks channel\(s\) \['Pz'\]"):
        FolderLoader(_config(tmp_path, channels=["C3", "Pz"])).load_subject("1")


def test_no_events_of_mapped_classes(tmp_path: Path) -> None:
    _write_fif(tmp_path / "sub-1_raw.fif")
    config = _config(tmp_path, events={"feet": "feet", "99": "tongue"})
    with pytest.raises(DataError, match=r"subject 1 \(sub-1_raw.fif\) has no trials .*markers "
                                        r"found: \['1', '2', '7'\]"):
        FolderLoader(config).load_subject("1")


def test_mains_unknown(tmp_path: Path) -> None:
    _export(tmp_path / "sub-1.edf", _raw())
    with pytest.raises(DataError, match=r"subject 1 do not state .*set dataset.mains_freq"):
        FolderLoader(_config(tmp_path, mains_freq=None)).load_subject("1")


def test_files_of_one_subject_disagree(tmp_path: Path) -> None:
    _write_fif(tmp_path / "sub-1_run-1_raw.fif")
    _write_fif(tmp_path / "sub-1_run-2_raw.fif", ch_names=["C3", "Cz", "Pz"])
    with pytest.raises(DataError, match=r"run-2_raw.fif \(subject 1\) has channels .*"
                                        r"dataset.channels"):
        FolderLoader(_config(tmp_path, channels=None)).load_subject("1")


@pytest.mark.parametrize("meas_date", [None, datetime(2020, 1, 1, tzinfo=timezone.utc)])
@pytest.mark.parametrize("events", [{"left": "left_hand", "right": "right_hand"},
                                    {"1": "left_hand", "2": "right_hand"}])
def test_cropped_fif_first_samp(tmp_path: Path, meas_date: datetime | None,
                                events: dict[str, str]) -> None:
    """Annotations and stim events land on the right samples when first_samp != 0."""
    data = _signal(4, 0)
    data[3] = 0
    for time, name in MARKERS:
        data[3, round(time * SFREQ)] = CODES[name]
    raw = mne.io.RawArray(data, mne.create_info([*EEG, "STI"], SFREQ, ["eeg"] * 3 + ["stim"]),
                          verbose="error")
    raw.set_meas_date(meas_date)
    raw.set_annotations(_annotations())
    raw.crop(1.0).save(tmp_path / "sub-1_raw.fif", verbose="error")
    assert mne.io.read_raw(tmp_path / "sub-1_raw.fif", verbose="error").first_samp == 128
    ep = FolderLoader(_config(tmp_path, events=events)).load_subject("1")
    assert len(ep) == 5
    first = _start(MARKERS[0][0])
    np.testing.assert_allclose(ep.get_data()[0], data[:3, first:first + N_TIMES])

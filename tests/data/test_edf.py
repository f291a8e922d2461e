"""Broken EDF/BDF files are refused by every loader: truncated files, undefined scaling.

The header helpers below edit a real or exported file in place: drop half its data records
(the header still declares all of them) or set one signal's digital maximum to its digital
minimum (MNE then reads that channel in volts). Through the command line each loader must
exit 2 with a message that names the file and the fix.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pytest
import yaml

from eegcrp.cli import main
from eegcrp.data import DataError
from eegcrp.data.edf import check_edf, read_edf_header
from tests.helpers import real_folder

SFREQ = 128.0
EEG = ["C3", "Cz", "C4"]


# --------------------------------------------------------------------------- helpers
def _field_offset(path: Path, field: int, width: int, signal: int) -> int:
    """Byte offset of one signal's header field; ``field`` = bytes of the fields before."""
    n_signals = int(path.read_bytes()[252:256].decode().strip())
    return 256 + field * n_signals + signal * width


def damage(path: Path, how: str, signal: int) -> None:
    """``truncated``: :func:`truncate_half`; ``unscaled``: :func:`unscale` ``signal``."""
    if how == "truncated":
        truncate_half(path)
    else:
        unscale(path, signal)


def truncate_half(path: Path) -> tuple[int, int]:
    """Keep the header and half the data records; returns (declared, kept) records."""
    header = read_edf_header(path)
    kept = header.n_records // 2
    content = path.read_bytes()
    path.write_bytes(content[: header.header_bytes + kept * header.record_bytes])
    return header.n_records, kept


def unscale(path: Path, signal: int) -> str:
    """Set one signal's digital maximum to its digital minimum; returns its label."""
    content = bytearray(path.read_bytes())
    # fields before digital min: label 16, transducer 80, unit 8, physical min/max 8 + 8
    dmin = _field_offset(path, 16 + 80 + 8 + 8 + 8, 8, signal)
    dmax = _field_offset(path, 16 + 80 + 8 + 8 + 8 + 8, 8, signal)
    content[dmax:dmax + 8] = content[dmin:dmin + 8]
    path.write_bytes(bytes(content))
    return read_edf_header(path).labels[signal]


def _set_main_field(path: Path, start: int, value: str) -> None:
    content = bytearray(path.read_bytes())
    content[start:start + 8] = value.ljust(8).encode()
    path.write_bytes(bytes(content))


def export_edf(path: Path, seconds: float = 20.0, seed: int = 0) -> None:
    """A small EDF or BDF (by suffix; 3 EEG channels, ~10 µV, T1/T2 markers every 3 s)."""
    pytest.importorskip("edfio")
    data = np.random.default_rng(seed).normal(0.0, 1e-5, (len(EEG), int(seconds * SFREQ)))
    raw = mne.io.RawArray(data, mne.create_info(EEG, SFREQ, "eeg"), verbose="error")
    onsets = np.arange(1.0, seconds - 3.0, 3.0)
    raw.set_annotations(mne.Annotations(onsets, 0.0, ["T1" if k % 2 == 0 else "T2"
                                                      for k in range(len(onsets))]))
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, overwrite=True, verbose="error")


def prepare_exit(tmp_path: Path, dataset: dict[str, Any], capsys: pytest.CaptureFixture,
                 **preprocessing: Any) -> tuple[int, str]:
    """``eegcrp prepare`` on a config with this dataset section: (exit status, stderr)."""
    config = {"name": "broken", "output_dir": str(tmp_path / "out"), "dataset": dataset,
              "preprocessing": {"window": 2.0, **preprocessing}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    rc = main(["prepare", str(path), "-q"])
    return rc, capsys.readouterr().err


# --------------------------------------------------------------------------- the check
def test_intact_files_pass(tmp_path: Path) -> None:
    export_edf(tmp_path / "a.edf")
    header = check_edf(tmp_path / "a.edf")
    assert header.kind == "EDF" and header.n_records == header.records_held > 0
    assert header.labels[:3] == EEG


@pytest.mark.parametrize("suffix", ["edf", "bdf"])  # BDF: 3-byte samples
def test_truncated_file_is_refused_with_counts(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"a.{suffix}"
    export_edf(path)
    declared, kept = truncate_half(path)
    with pytest.raises(DataError, match=rf"a\.{suffix} is truncated: the header declares "
                                        rf"{declared} data record\(s\) \({declared} s\), the "
                                        rf"file holds {kept} data record\(s\) \({kept} s\); "
                                        "get it back"):
        check_edf(path, "get it back")


def test_unknown_record_count_and_extra_records_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.edf"
    export_edf(path)
    header = read_edf_header(path)
    _set_main_field(path, 236, "-1")
    with pytest.raises(DataError, match=r"does not state the number of data records \(-1"):
        check_edf(path)
    _set_main_field(path, 236, str(header.n_records - 2))
    with pytest.raises(DataError, match="does not match its header"):
        check_edf(path)


@pytest.mark.parametrize(("field", "suffix"), [("digital", "edf"), ("physical", "edf"),
                                               ("digital", "bdf")])
def test_undefined_scaling_is_refused(tmp_path: Path, field: str, suffix: str) -> None:
    path = tmp_path / f"a.{suffix}"
    export_edf(path)
    if field == "digital":
        label = unscale(path, 1)
    else:  # physical max := physical min
        content = bytearray(path.read_bytes())
        pmin = _field_offset(path, 16 + 80 + 8, 8, 1)
        pmax = _field_offset(path, 16 + 80 + 8 + 8, 8, 1)
        content[pmax:pmax + 8] = content[pmin:pmin + 8]
        path.write_bytes(bytes(content))
        label = read_edf_header(path).labels[1]
    with pytest.raises(DataError, match=rf"undefined scaling on signal\(s\) '{label}' "
                                        rf"\({field} max = {field} min"):
        check_edf(path)
    # MNE itself would read it (only warning), in volts for the digital case
    with pytest.warns(RuntimeWarning):
        raw = mne.io.read_raw(path, preload=True)
    if field == "digital":
        assert np.ptp(raw.get_data(picks=[label])) > 1e-2


def test_header_cut_short_or_malformed(tmp_path: Path) -> None:
    path = tmp_path / "a.bdf"
    path.write_bytes(b"0" * 100)
    with pytest.raises(DataError, match=r"a\.bdf could not be read as BDF: the file ends inside"):
        check_edf(path)
    export_edf(tmp_path / "b.edf")
    path = tmp_path / "b.edf"
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(DataError, match=r"could not be read as EDF: the file ends inside its "
                                        r"header \(600 of"):
        check_edf(path)
    export_edf(path)
    _set_main_field(path, 236, "many")
    with pytest.raises(DataError, match="main header is malformed"):
        check_edf(path)


# --------------------------------------------------------------------------- through the CLI
@pytest.mark.parametrize("how", ["truncated", "unscaled"])
def test_folder_refuses_broken_edf(tmp_path: Path, capsys: pytest.CaptureFixture,
                                   how: str) -> None:
    for subject in (1, 2):
        export_edf(tmp_path / "data" / f"sub-{subject}_eeg.edf", seed=subject)
    bad = tmp_path / "data" / "sub-2_eeg.edf"
    damage(bad, how, 2)
    rc, err = prepare_exit(tmp_path, {
        "kind": "folder", "path": str(tmp_path / "data"), "task": "motor_imagery",
        "events": {"T1": "left_hand", "T2": "right_hand"}, "tmax": 2.0, "mains_freq": 50,
    }, capsys, h_freq=40.0)
    assert rc == 2
    assert "sub-2_eeg.edf" in err
    assert ("is truncated" if how == "truncated" else "undefined scaling on signal(s) 'C4'") \
        in err
    assert "copy or export the file again" in err and "leave subject 2 out" in err


@pytest.mark.realdata
@pytest.mark.parametrize("how", ["truncated", "unscaled"])
def test_eegmat_refuses_broken_edf(tmp_path: Path, capsys: pytest.CaptureFixture,
                                   how: str) -> None:
    src = real_folder("eegmat_arithmetic_21ch")
    data = tmp_path / "eegmat"
    data.mkdir()
    for name in ("Subject00_1.edf", "Subject00_2.edf", "Subject01_1.edf", "Subject01_2.edf"):
        shutil.copyfile(src / name, data / name)
    # the arithmetic file only: a channel read in volts in one class is a perfect confound
    bad = data / "Subject00_2.edf"
    damage(bad, how, 3)
    rc, err = prepare_exit(tmp_path, {"kind": "eegmat", "path": str(data)}, capsys)
    assert rc == 2
    assert "Subject00_2.edf" in err
    if how == "truncated":
        assert "is truncated: the header declares 62 data record(s) (62 s), the file holds " \
               "31 data record(s) (31 s)" in err
    else:
        assert "undefined scaling on signal(s) 'EEG F4'" in err
    assert "copy the file again from PhysioNet eegmat, or leave subject S00 out" in err


@pytest.mark.realdata
@pytest.mark.parametrize("how", ["truncated", "unscaled"])
def test_eegmmidb_refuses_broken_edf(tmp_path: Path, capsys: pytest.CaptureFixture,
                                     how: str) -> None:
    src = real_folder("eegmmidb_mi")
    data = tmp_path / "eegmmidb"
    data.mkdir()
    for subject in ("S001", "S002"):
        shutil.copyfile(src / f"{subject}R04.edf", data / f"{subject}R04.edf")
    bad = data / "S002R04.edf"
    damage(bad, how, 0)
    rc, err = prepare_exit(tmp_path, {"kind": "eegmmidb", "path": str(data), "runs": [4]},
                           capsys)
    assert rc == 2
    assert "S002R04.edf" in err
    assert ("is truncated" if how == "truncated" else "undefined scaling on signal(s) 'Fc5.'") \
        in err
    assert "download it again" in err and "leave subject S002 out" in err

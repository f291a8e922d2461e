"""The amplitude check: channels of implausible amplitude are refused or flagged and named."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest
import yaml

from eegcrp.cli import main
from eegcrp.config import PreprocessingConfig, load_config
from eegcrp.data.base import DataError, Recording, make_segment
from eegcrp.preprocessing import Preprocessor, prepare
from eegcrp.preprocessing.amplitude import implausible_channels, robust_amplitude

CH = ["C3", "Cz", "C4", "Pz"]
SFREQ = 128.0


def _eeg(n_channels: int, seconds: float, seed: int) -> np.ndarray:
    """10 Hz rhythm plus noise, ~10 µV, in volts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SFREQ)) / SFREQ
    return 1e-5 * (np.sin(2 * np.pi * 10 * t) + rng.standard_normal((n_channels, len(t))))


def _recording(data: np.ndarray) -> Recording:
    raw = mne.io.RawArray(data, mne.create_info(CH, SFREQ, "eeg"), verbose="error")
    make_segment(raw, montage="standard_1005", line_freq=50.0, where="test")
    trials = pd.DataFrame({"segment": 0, "onset": [4.0, 8.0, 12.0, 16.0],
                           "label": ["a", "b", "a", "b"]})
    return Recording("s1", [raw], trials, 3.0, {"a": 1, "b": 2}).validate()


def test_robust_amplitude_ignores_rare_extremes_and_takes_the_worst_segment() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (2, 100_000))
    x[0, :50] = 1e3  # 0.05 % of samples: a few spikes do not count
    amp = robust_amplitude([x, 3 * x[::-1]])
    np.testing.assert_allclose(amp, [6.0, 6.0], rtol=0.01)  # the second segment's range
    cfg = PreprocessingConfig(max_amplitude_uv=100.0, min_amplitude_uv=1.0)
    assert implausible_channels(["A", "B", "C"], [50e-6, 2e-3, 0.0], cfg) == \
        {"B": 2000.0, "C": 0.0}
    off = PreprocessingConfig(max_amplitude_uv=None, min_amplitude_uv=None)
    assert implausible_channels(["A", "B"], [1e3, 0.0], off) == {}
    with pytest.raises(ValueError, match="must be below max_amplitude_uv"):
        PreprocessingConfig(max_amplitude_uv=1.0, min_amplitude_uv=1.0)


def test_a_channel_in_volts_is_refused_or_flagged(caplog: pytest.LogCaptureFixture) -> None:
    data = _eeg(len(CH), 20.0, 0)
    data[1] *= 1e5  # Cz read in volts instead of microvolts (~1 V)
    cfg = PreprocessingConfig(window=2.0, h_freq=40.0)
    with pytest.raises(DataError, match=r"^subject s1: channel\(s\) Cz \(\d.* µV\) have a "
                                        r"robust peak-to-peak .* outside 0.5-3000 µV.*"
                                        r"leave subject s1 out.*widen the limits"):
        Preprocessor(cfg).process(_recording(data))
    warn = cfg.model_copy(update={"amplitude_action": "warn"})
    with caplog.at_level(logging.WARNING, logger="eegcrp.preprocessing.amplitude"):
        out = Preprocessor(warn).process(_recording(data))
    assert list(out.implausible) == ["Cz"] and out.implausible["Cz"] > 1e5
    assert set(out.amplitudes) == set(CH) and out.amplitudes["C3"] < 200
    assert "Cz (" in caplog.text and "kept" in caplog.text
    # a channel stuck at one value is flat after the high-pass
    data = _eeg(len(CH), 20.0, 1)
    data[3] = 8e-3
    out = Preprocessor(warn).process(_recording(data))
    assert list(out.implausible) == ["Pz"] and out.implausible["Pz"] < 0.5
    off = cfg.model_copy(update={"max_amplitude_uv": None, "min_amplitude_uv": None})
    assert Preprocessor(off).process(_recording(data)).implausible == {}


def _write_study(tmp_path: Path) -> Path:
    """Two subjects as FIF files; subject 2's C4 is in volts. Returns the config file."""
    (tmp_path / "data").mkdir()
    for subject in (1, 2):
        data = _eeg(len(CH), 20.0, subject)
        if subject == 2:
            data[2] *= 1e5
        raw = mne.io.RawArray(data, mne.create_info(CH, SFREQ, "eeg"), verbose="error")
        onsets = np.arange(1.0, 17.0, 3.0)
        raw.set_annotations(mne.Annotations(onsets, 0.0, ["L", "R"] * (len(onsets) // 2)))
        raw.save(tmp_path / "data" / f"sub-{subject}_raw.fif", verbose="error")
    config = {"name": "amp", "output_dir": str(tmp_path / "out"),
              "dataset": {"kind": "folder", "path": str(tmp_path / "data"),
                          "task": "motor_imagery", "events": {"L": "left", "R": "right"},
                          "tmax": 2.0, "mains_freq": 50},
              "preprocessing": {"window": 2.0, "h_freq": 40.0}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_prepare_refuses_by_default_and_names_flagged_channels_with_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = _write_study(tmp_path)
    assert main(["prepare", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert "subject 2): channel(s) C4 (" in err and "sub-2_raw.fif" in err
    assert "outside 0.5-3000 µV" in err and "leave subject 2 out" in err
    assert "amplitude_action: warn" in err

    warn = ["--set", "preprocessing.amplitude_action=warn"]
    assert main(["prepare", str(path), "-q", *warn]) == 0
    out = tmp_path / "out"
    table = pd.read_csv(out / "prepare" / "summary.csv", index_col="subject",
                        keep_default_na=False)
    assert table.loc[1, "implausible_channels"] == ""
    assert table.loc[2, "implausible_channels"].startswith("C4 (")
    manifest = json.loads((out / "prepare" / "manifest.json").read_text())
    assert list(manifest["extra"]["info"]["implausible_channels"]) == ["2"]
    assert main(["report", str(path), "-q", *warn]) == 0
    html = (out / "report.html").read_text()
    assert "Amplitude check: 1 subject(s) have channels outside the limits" in html
    assert "C4 (" in html

    # from the cache the decision is made again, with the same outcome
    dataset = prepare(load_config(path, ["preprocessing.amplitude_action=warn"]),
                      progress=False)
    assert dataset.info["cache_hits"] == 2
    assert list(dataset.info["implausible_channels"]) == ["2"]


def test_a_channel_flat_in_one_recording_is_not_hidden_by_the_others():
    from eegcrp.config import PreprocessingConfig
    from eegcrp.preprocessing.amplitude import implausible_channels

    config = PreprocessingConfig()
    largest, smallest = [50e-6, 60e-6], [40e-6, 1e-12]  # Cz dead in one of two runs
    assert implausible_channels(["C3", "Cz"], largest, config) == {}
    assert implausible_channels(["C3", "Cz"], largest, config, smallest) == {"Cz": 0.0}

"""Regions from 3-D positions for standard montages, presets, refusals."""

from __future__ import annotations

import pytest

from eegcrp.data.montage import make_montage
from eegcrp.data.simulate.forward import resolve_channels
from eegcrp.regions import RegionsError, auto_layout, make_layout
from eegcrp.regions.layout import THESIS_PRESETS


def _channels(names):
    pos = {k.lower(): v for k, v in make_montage("standard_1005").get_positions()[
        "ch_pos"].items()}
    return {"names": list(names), "positions": [pos[n.lower()].tolist() for n in names],
            "bipolar": False}


def _region_of(layout, channel):
    return [r for r, chans in layout.regions.items() if channel in chans]


def test_standard_10_20():
    names = ["Fp1", "Fpz", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
             "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2"]
    layout = make_layout("auto", _channels(names))
    expect = {"Fp1": "frontal_left", "Fpz": "frontal_midline", "F8": "frontal_right",
              "T7": "temporal_left", "T8": "temporal_right", "C3": "central_left",
              "Cz": "central_midline", "C4": "central_right", "P7": "parietal_left",
              "Pz": "parietal_midline", "P8": "parietal_right", "O1": "occipital_left",
              "Oz": "occipital_midline", "O2": "occipital_right"}
    for channel, region in expect.items():
        assert _region_of(layout, channel) == [region], channel
    assert not layout.unassigned and not layout.empty  # every lobe x side has a channel


def test_10_10_64_channels():
    layout = make_layout("auto", _channels(resolve_channels("standard_64")))
    assert sum(len(v) for v in layout.regions.values()) == 64  # each channel exactly once
    expect = {"FC3": "central_left", "CP4": "central_right", "FCz": "central_midline",
              "FT7": "temporal_left", "TP8": "temporal_right", "AF7": "frontal_left",
              "F1": "frontal_left", "P9": "parietal_left", "PO4": "occipital_right",
              "POz": "occipital_midline", "Iz": "occipital_midline", "C5": "central_left"}
    for channel, region in expect.items():
        assert _region_of(layout, channel) == [region], channel
    assert len(layout.regions) == 14


def test_19_channels_old_names_and_small_regions():
    names = resolve_channels("10-20_19")
    layout = make_layout("auto", _channels(names))
    assert layout.empty == ["occipital_midline"]  # reported, not silently absent
    assert _region_of(layout, "C3") == ["central_left"]
    merged = auto_layout(names, _channels(names)["positions"], min_channels=2)
    # lobes with single-channel sides are merged (central: C3 | Cz | C4), none dropped
    assert {"central", "temporal", "occipital"} <= set(merged.regions)
    assert merged.merged and sum(len(v) for v in merged.regions.values()) == 19
    assert "frontal_midline" in merged.small or "frontal" in merged.regions


def test_thesis_preset_reports_missing_and_unassigned_channels():
    names = ["Fp1", "Fp2", "F3", "F4", "C3", "Cz", "C4", "T3", "T4", "P3", "P4", "O1", "O2"]
    layout = make_layout("thesis", _channels(names), task="motor_imagery")
    assert layout.name == "thesis/motor_imagery"
    assert layout.regions["left_motor"] == ["C3"]
    assert "FC5" in layout.missing["left_motor"]
    assert "O1" in layout.unassigned and "Cz" in layout.unassigned
    aud = make_layout("thesis", _channels(names), task="auditory_attention")
    assert aud.regions["left_temporal"] == ["T3"]  # T3 = T7
    assert set(THESIS_PRESETS["internal_attention"]) == {
        "frontal", "occipital", "left_parietal", "right_parietal", "central"}
    with pytest.raises(RegionsError, match="no region preset for task"):
        make_layout("thesis", _channels(names), task="sleep")
    custom = make_layout({"motor": ["C3", "C4", "X1"]}, _channels(names))
    assert custom.regions == {"motor": ["C3", "C4"]} and custom.missing == {"motor": ["X1"]}


def test_bipolar_montage_is_refused():
    channels = {"names": ["C3", "Cz", "C4"], "positions": [None] * 3, "bipolar": True,
                "bipolar_channels": ["C3", "Cz", "C4"]}
    with pytest.raises(RegionsError, match=r"bipolar.*regions.enabled=false"):
        make_layout("auto", channels)

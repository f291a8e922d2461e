"""Per-channel drawing (eegcrp.report.topography): scalp maps only where electrodes are."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from eegcrp.data.montage import make_montage
from eegcrp.report.topography import SPARSE_CHANNELS, draw_channels, scalp_info


def _channels(names, bipolar=False):
    montage = make_montage("standard_1005")
    pos = montage.get_positions()["ch_pos"]
    return {"names": list(names), "positions": [pos[n].tolist() for n in names],
            "bipolar": bipolar}


def test_sparse_headband_gets_bars_not_an_interpolated_scalp():
    channels = _channels(["TP9", "AF7", "AF8", "TP10"])
    assert scalp_info(channels) is None
    fig, ax = plt.subplots()
    im = draw_channels(ax, np.array([1.0, -0.5, 0.2, 0.0]), channels, vlim=(-1, 1))
    assert im is None and len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["TP9", "AF7", "AF8", "TP10"]
    plt.close(fig)


def test_dense_montage_interpolates_locally_and_bipolar_never_maps():
    names = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
             "P3", "Pz", "P4", "P8", "O1", "O2"]
    assert len(names) >= SPARSE_CHANNELS
    info, keep = scalp_info(_channels(names))
    assert info.ch_names == names and keep == list(range(19))
    fig, ax = plt.subplots()
    im = draw_channels(ax, np.linspace(-1, 1, 19), _channels(names), vlim=(-1, 1))
    assert im is not None
    plt.close(fig)
    assert scalp_info(_channels(names, bipolar=True)) is None
    missing = _channels(names)
    missing["positions"][3] = None
    assert scalp_info(missing)[1] == [k for k in range(19) if k != 3]

from __future__ import annotations

import mne
import numpy as np

from eegcrp.report.data_section import add_data_section, class_psd, counts_table_html
from tests.conftest import synthetic_dataset


def test_counts_table_lists_subjects_classes_and_totals() -> None:
    ds = synthetic_dataset(n_subjects=2, n_trials=6)
    html = counts_table_html(ds)
    assert html.count("<tr>") == 4  # header, 2 subjects, total
    assert "<th>total</th><th>6</th><th>6</th><th>12</th>" in html


def test_class_psd_shape_and_peak() -> None:
    ds = synthetic_dataset(n_subjects=2, n_trials=4, n_times=512)
    # plant a 10 Hz rhythm in class "b" of subject s00
    ep = ds["s00"]
    t = ep.times
    ep._data[ep.events[:, 2] == 2] += 1e-4 * np.sin(2 * np.pi * 10 * t)
    freqs, psd = class_psd(ds)
    assert psd.shape == (2, 2, 4, len(freqs))
    peak = freqs[np.argmax(psd[0, 1].mean(0))]
    assert abs(peak - 10) <= 1
    assert psd[0, 1, :, np.argmin(abs(freqs - 10))].mean() > 100 * psd[0, 0, :, np.argmin(
        abs(freqs - 10))].mean()


def test_data_section_adds_figures(tmp_path) -> None:
    report = mne.Report(verbose="error")
    add_data_section(report, synthetic_dataset())
    report.save(tmp_path / "r.html", open_browser=False, verbose="error")
    html = (tmp_path / "r.html").read_text()
    for title in ("Windows per subject and class", "Sensor layout", "Per-class power spectra",
                  "Band power difference between classes"):
        assert title in html
    assert html.count("data:image/png;base64") >= 3

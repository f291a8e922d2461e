"""Data report section: counts, sensors, spectra; no scalp maps of bipolar derivations."""

from __future__ import annotations

from types import SimpleNamespace

import mne
import numpy as np

from eegcrp.config import load_config
from eegcrp.report.data_section import add_data_section, class_psd, counts_table_html
from eegcrp.stages.prepare import channel_table
from eegcrp.stages.report import report_context
from tests.helpers import synthetic_dataset


def _html(report: mne.Report, path) -> str:
    report.save(path, open_browser=False, overwrite=True, verbose="error")
    return path.read_text()


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


def test_class_psd_equals_mne_compute_psd_in_any_chunking() -> None:
    ds = synthetic_dataset(n_subjects=2, n_trials=5, n_times=384)
    freqs, whole = class_psd(ds)
    _, chunked = class_psd(ds, chunk_bytes=1)  # one window per call
    np.testing.assert_array_equal(chunked, whole)
    for i, (_, ep) in enumerate(ds):
        ref = ep.compute_psd(method="welch", fmin=1.0, fmax=ds.sfreq / 2, verbose="error",
                             n_fft=min(len(ep.times), int(2 * ds.sfreq)))
        data, ref_freqs = ref.get_data(return_freqs=True)
        np.testing.assert_array_equal(ref_freqs, freqs)
        for k, name in enumerate(ds.classes):
            mask = ep.events[:, 2] == ep.event_id[name]
            np.testing.assert_allclose(whole[i, k], data[mask].mean(0), rtol=1e-12, atol=0)


def test_data_section_adds_figures(tiny_study, tmp_path) -> None:
    report = mne.Report(verbose="error")
    add_data_section(report, report_context(tiny_study))
    html = _html(report, tmp_path / "r.html")
    for title in ("Windows per subject and class", "Sensor layout", "Per-class power spectra",
                  "Band power difference between classes"):
        assert title in html
    assert html.count("data:image/png;base64") >= 3
    # the amplitude check ran and found nothing (simulated EEG is plausible)
    assert "Amplitude check: every channel of every subject has a robust peak-to-peak" in html


def test_bipolar_derivations_get_no_scalp_maps(tmp_path) -> None:
    ds = synthetic_dataset(n_subjects=2, n_trials=4, ch_names=("C3", "Cz", "C4"))
    for _, ep in ds:
        for ch in ep.info["chs"]:
            ch["coil_type"] = mne.io.constants.FIFF.FIFFV_COIL_EEG_BIPOLAR
    channels = channel_table(ds[ds.subjects[0]].info)
    assert channels["bipolar"] and channels["bipolar_channels"] == ["C3", "Cz", "C4"]
    ctx = SimpleNamespace(dataset=ds, config=load_config({"dataset": {"kind": "bciciv2b"}}),
                          manifests={"prepare": SimpleNamespace(extra={"channels": channels})})
    report = mne.Report(verbose="error")
    add_data_section(report, ctx)
    html = _html(report, tmp_path / "r.html")
    assert "are bipolar derivations" in html
    assert "Band power difference between classes" not in html
    assert "Per-class power spectra" in html

"""Report section describing the prepared dataset: counts, sensors, per-class spectra."""

from __future__ import annotations

import html
from typing import Any

import mne
import numpy as np
from matplotlib.figure import Figure

from ..config import DEFAULT_BANDS
from ..data.base import EEGDataset
from .context import ReportContext
from .figures import subplots
from .topography import draw_channels

__all__ = ["DEFAULT_BANDS", "add_data_section", "amplitude_check_html", "class_psd",
           "counts_table_html"]


def counts_table_html(dataset: EEGDataset) -> str:
    """Subjects x classes window counts (plus totals) as an HTML table."""
    table = dataset.summary()
    total = table[[*dataset.classes, "n_epochs"]].sum()
    rows = ["<table class='table table-sm table-striped'><thead><tr><th>subject</th>"]
    cols = [*dataset.classes, "n_epochs", "n_channels", "sfreq", "epoch_s"]
    rows += [f"<th>{html.escape(c)}</th>" for c in cols]
    rows.append("</tr></thead><tbody>")
    for subject, row in table.iterrows():
        rows.append(f"<tr><td>{html.escape(str(subject))}</td>")
        rows += [f"<td>{row[c]:g}</td>" for c in cols]
        rows.append("</tr>")
    rows.append("<tr><th>total</th>")
    rows += [f"<th>{int(total[c])}</th>" for c in [*dataset.classes, "n_epochs"]]
    rows.append("<th></th>" * 3 + "</tr></tbody></table>")
    return "".join(rows)


def amplitude_check_html(dataset: EEGDataset, config: Any) -> str:
    """The amplitude check's outcome: a sentence, plus a table of flagged channels if any.

    Empty for datasets prepared before the check existed (no ``implausible_channels``).
    """
    flagged = dataset.info.get("implausible_channels")
    if flagged is None:
        return ""
    pre = config.preprocessing
    limits = [f"at least {pre.min_amplitude_uv:g} µV" if pre.min_amplitude_uv is not None
              else "", f"at most {pre.max_amplitude_uv:g} µV" if pre.max_amplitude_uv is not None
              else ""]
    limits = [x for x in limits if x]
    if not limits:
        return "<p>Amplitude check: off (no limits set).</p>"
    rule = (f"robust peak-to-peak amplitude (99.9th - 0.1th percentile after the band-pass) "
            f"of {' and '.join(limits)}")
    if not flagged:
        return f"<p>Amplitude check: every channel of every subject has a {rule}.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(subject))}</td><td>"
        + html.escape(", ".join(f"{name} ({value:.4g} µV)" for name, value in chans.items()))
        + "</td></tr>"
        for subject, chans in flagged.items()
    )
    return (
        f"<p><b>Amplitude check: {len(flagged)} subject(s) have channels outside the limits</b> "
        f"(a {rule} is expected; preprocessing.amplitude_action: warn kept them). Such a "
        "channel is mis-scaled, railing, disconnected or flat, and the common average spreads "
        "it to every channel: treat these subjects' results with caution, or drop the "
        "channels or subjects.</p><table class='table table-sm'><thead><tr><th>subject</th>"
        f"<th>implausible channels (robust peak-to-peak)</th></tr></thead><tbody>{rows}"
        "</tbody></table>"
    )


def class_psd(
    dataset: EEGDataset, fmin: float = 1.0, fmax: float | None = None,
    chunk_bytes: float = 8e6,
) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD per subject and class.

    Each subject's windows go to :func:`mne.time_frequency.psd_array_welch` (what
    ``Epochs.compute_psd(method="welch")`` calls) in chunks of at most ``chunk_bytes``:
    above 10 MB MNE falls back to one call per channel and window, ~100x slower, and the
    windows are independent, so chunking changes no value.

    Returns
    -------
    freqs : ndarray, shape (n_freqs,)
    psd : ndarray, shape (n_subjects, n_classes, n_channels, n_freqs)
        Mean PSD (V²/Hz) over each subject's windows of each class; NaN where a subject
        has no window of a class.
    """
    from mne.time_frequency import psd_array_welch

    fmax = fmax if fmax is not None else dataset.sfreq / 2
    out, freqs = [], None
    for _, ep in dataset:
        x = ep.get_data(picks="data", copy=False)
        step = max(1, int(chunk_bytes // max(x[0].nbytes, 1)))
        parts = []
        for start in range(0, len(x), step):
            psd, freqs = psd_array_welch(x[start:start + step], ep.info["sfreq"], fmin=fmin,
                                         fmax=fmax, n_fft=min(x.shape[-1],
                                                              int(2 * dataset.sfreq)),
                                         verbose="error")
            parts.append(psd)
        data = np.concatenate(parts)
        per_class = []
        for name in dataset.classes:
            mask = ep.events[:, 2] == ep.event_id[name]
            per_class.append(data[mask].mean(0) if mask.any()
                             else np.full(data.shape[1:], np.nan))
        out.append(per_class)
    return freqs, np.asarray(out)


def _psd_figure(dataset: EEGDataset, freqs: np.ndarray, psd: np.ndarray) -> Figure:
    """Mean log-PSD per class (mean over channels, shaded: SEM across subjects)."""
    log = 10 * np.log10(psd * 1e12)  # dB re 1 µV²/Hz
    per_subject = np.nanmean(log, axis=2)  # subjects x classes x freqs
    fig, ax = subplots(figsize=(7, 4), layout="constrained")
    n = np.sum(np.isfinite(per_subject), axis=0)
    for k, name in enumerate(dataset.classes):
        mean = np.nanmean(per_subject[:, k], axis=0)
        sem = np.nanstd(per_subject[:, k], axis=0) / np.sqrt(np.maximum(n[k], 1))
        ax.plot(freqs, mean, label=name, lw=1.5)
        ax.fill_between(freqs, mean - sem, mean + sem, alpha=0.25)
    ax.set(xlabel="Frequency (Hz)", ylabel="PSD (dB re 1 µV²/Hz)",
           title=f"Per-class PSD, mean over {len(dataset.ch_names)} channels "
                 f"and {len(dataset)} subjects (± SEM)")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return fig


def _band_difference_figure(
    dataset: EEGDataset, freqs: np.ndarray, psd: np.ndarray,
    bands: dict[str, tuple[float, float]], channels: dict,
) -> Figure | None:
    """Band log-power difference between the first two classes, per channel: scalp maps
    interpolated only where electrodes are, or bars for sparse montages
    (:func:`eegcrp.report.topography.draw_channels`)."""
    if len(dataset.classes) < 2:
        return None
    bands = {k: v for k, v in bands.items() if v[0] < freqs[-1]}
    fig, axes = subplots(1, len(bands), figsize=(2.4 * len(bands), 2.8),
                         layout="constrained")
    axes = np.atleast_1d(axes)
    diffs = []
    for lo, hi in bands.values():
        sel = (freqs >= lo) & (freqs < hi)
        band = 10 * np.log10(np.nanmean(psd[..., sel], axis=-1))  # subj x class x ch
        diffs.append(np.nanmean(band[:, 1] - band[:, 0], axis=0))
    lim = max(float(np.nanmax(np.abs(diffs))), 1e-6)
    im = None
    label = f"{dataset.classes[1]} − {dataset.classes[0]} (dB)"
    for ax, (name, (lo, hi)), d in zip(axes, bands.items(), diffs, strict=True):
        im = draw_channels(ax, d, channels, vlim=(-lim, lim)) or im
        ax.set_title(f"{name}\n{lo:g}-{hi:g} Hz", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes.tolist(), shrink=0.7, label=label)
    else:
        axes[0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"Colour limits ±{lim:.2f} dB (symmetric)", fontsize=8)
    return fig


def add_data_section(report: mne.Report, ctx: ReportContext) -> mne.Report:
    """Add the data section (counts, sensor layout, per-class PSD) to ``report``.

    ``ctx`` is a :class:`eegcrp.report.ReportContext` (config, prepared windows, manifests).
    Bipolar derivations get no scalp maps (their positions are not electrode sites).
    """
    dataset: EEGDataset = ctx.dataset
    bands = ctx.config.explain.bands
    channels = ctx.manifests["prepare"].extra.get("channels", {})
    bipolar = bool(channels.get("bipolar"))
    section = "Data"
    report.add_html(
        f"<p>Dataset <b>{html.escape(dataset.name)}</b> ({dataset.task.replace('_', ' ')}), "
        f"{len(dataset)} subjects, {len(dataset.ch_names)} channels at {dataset.sfreq:g} Hz, "
        f"windows of {dataset.n_times / dataset.sfreq:g} s; mains "
        f"{dataset.mains_freq or 'unknown'} Hz.</p>" + counts_table_html(dataset)
        + amplitude_check_html(dataset, ctx.config),
        title="Windows per subject and class", section=section,
    )
    info = dataset[dataset.subjects[0]].info
    if bipolar:
        report.add_html(
            "<p>The channels " + html.escape(", ".join(channels.get("bipolar_channels", [])))
            + " are bipolar derivations (the difference of two electrodes), not potentials at "
            "one scalp site: no sensor map or scalp topography is drawn for them.</p>",
            title="Sensor layout", section=section,
        )
    else:
        fig = mne.viz.plot_sensors(info, show_names=True, show=False)
        fig.suptitle("Sensor layout")
        report.add_figure(fig, title="Sensor layout", section=section)
    freqs, psd = class_psd(dataset)
    fig = _psd_figure(dataset, freqs, psd)
    report.add_figure(fig, title="Per-class power spectra", section=section,
                      caption="Read: the classes' spectra should differ in the bands the task "
                              "modulates; a peak at the mains frequency means the notch did "
                              "not work.")
    fig = None if bipolar else _band_difference_figure(dataset, freqs, psd,
                                                       bands or DEFAULT_BANDS, channels)
    if fig is not None:
        report.add_figure(
            fig, title="Band power difference between classes", section=section,
            caption="Read: red where the second class has more power than the first, blue "
                    "where less (mean over subjects, dB); a task effect should appear where "
                    "the literature expects it, not at the edge electrodes (artefacts).")
    return report

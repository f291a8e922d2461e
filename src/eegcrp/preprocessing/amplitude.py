"""The amplitude check: channels whose amplitude no scalp EEG has.

A channel read with a wrong gain (e.g. undefined scaling in a file header: volts instead of
microvolts), railing at the amplifier's limits, disconnected or stuck is not EEG. Worse,
the common-average reference subtracts it from every other channel, and when it is bad in
the files of one class only (eegmat's classes are files) it becomes a perfect confound.

**Measure.** The robust peak-to-peak amplitude of a channel is the difference of its 99.9th
and 0.1th percentile over the samples of a segment; a subject's value is the largest over
its segments (all trials of an epoched source count as one segment), so a channel bad in
one run is not diluted by the good ones. Percentiles ignore the few most extreme samples
(spikes, electrode pops), unlike the plain peak-to-peak.

**Where.** After the band-pass and notch, before resampling and the common average: slow
drift and DC offsets (tens of mV on DC-coupled amplifiers such as BioSemi, harmless after
the 1 Hz high-pass) would otherwise flag good recordings, and before the average a bad
channel has not yet leaked into the others. A constant channel (stuck at a rail, or a
mis-scaled DC value) is about zero after the high-pass and is caught by the lower limit.
With ``preprocessing.l_freq: null`` the measure includes the recording's drift.

**Limits** (``preprocessing.max_amplitude_uv``, ``min_amplitude_uv``). Measured with the
default 1-60 Hz band and notch, the largest robust amplitude of any channel of any subject
is 1377 µV in eegmmidb (S003 Fp1: eye blinks on a frontal channel), 720 µV in eegmat (S01
O2), 37 µV in BCI IV 2b (B03 Cz, prefiltered 8-30 Hz), 202 µV in the demo's simulated data
and 817 µV with 2 simulated blinks per second; the smallest is 9.1 µV (BCI IV 2b B02 C3).
Broken channels measure 4.7e6 µV (eegmmidb with digital max = digital min, as MNE reads it),
7.7e3 µV (a drifting channel clipped at eegmmidb's ±8.1 mV range) and about 0 (stuck at one
value). The default upper limit, 3000 µV, is 2.2 times the largest clean value and catches
these; the lower limit, 0.5 µV, is far below any real channel (amplifier noise alone
exceeds it).

**Decision** (``preprocessing.amplitude_action``). ``refuse`` (default) stops with a
:class:`~eegcrp.errors.DataError` that names the subject, channels, values, limits and the
fixes: through the common average one such channel corrupts all of them, so results built
on it would look valid and be wrong. ``warn`` keeps the subject, logs a warning and names
the channels in ``EEGDataset.info['implausible_channels']``, the prepare summary and the
report, for data whose amplitudes are known to be real.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np

from ..config import PreprocessingConfig
from ..data.base import DataError

logger = logging.getLogger(__name__)

__all__ = ["QUANTILES", "check_amplitudes", "describe", "implausible_channels",
           "robust_amplitude"]

#: Percentiles whose difference is the robust peak-to-peak amplitude.
QUANTILES = (0.1, 99.9)


def robust_amplitude(segments: Iterable[np.ndarray]) -> np.ndarray:
    """Robust peak-to-peak amplitude per channel: the largest over ``segments``.

    Parameters
    ----------
    segments : iterable of ndarray, shape (n_channels, n_times)
        The subject's (filtered) segments, in volts.

    Returns
    -------
    ndarray, shape (n_channels,)
        Per channel, the maximum over segments of the 99.9th minus the 0.1th percentile.
    """
    out: np.ndarray | None = None
    for data in segments:
        low, high = np.percentile(data, QUANTILES, axis=-1)
        amp = high - low
        out = amp if out is None else np.maximum(out, amp)
    if out is None:
        raise ValueError("robust_amplitude needs at least one segment")
    return out


def implausible_channels(
    ch_names: Sequence[str], amplitudes: Sequence[float], config: PreprocessingConfig,
    smallest: Sequence[float] | None = None,
) -> dict[str, float]:
    """Channels outside the configured limits -> robust amplitude in µV (rounded to 0.1).

    ``amplitudes`` is each channel's largest robust amplitude over the subject's segments
    (checked against the upper limit), ``smallest`` its smallest (checked against the lower
    limit; default ``amplitudes``): a channel flat or scaled down in one recording is not
    hidden by the subject's good ones.
    """
    high, low = config.max_amplitude_uv, config.min_amplitude_uv
    smallest = amplitudes if smallest is None else smallest
    flagged = {}
    for name, amp, least in zip(ch_names, amplitudes, smallest, strict=True):
        uv, least_uv = float(amp) * 1e6, float(least) * 1e6
        if high is not None and not uv <= high:
            flagged[str(name)] = round(uv, 1)
        elif low is not None and not least_uv >= low:
            flagged[str(name)] = round(least_uv, 1)
    return flagged


def _limits(config: PreprocessingConfig) -> str:
    """``outside 0.5-3000 µV (preprocessing.min_amplitude_uv-max_amplitude_uv)`` or one side."""
    low, high = config.min_amplitude_uv, config.max_amplitude_uv
    if low is not None and high is not None:
        return (f"outside {low:g}-{high:g} µV (preprocessing.min_amplitude_uv-"
                "max_amplitude_uv)")
    if high is not None:
        return f"above {high:g} µV (preprocessing.max_amplitude_uv)"
    return f"below {low:g} µV (preprocessing.min_amplitude_uv)"


def describe(flagged: dict[str, float]) -> str:
    """``"Fc3 (6.1e+06 µV), Cz (0 µV)"``: channels with their robust amplitude."""
    return ", ".join(f"{name} ({value:.4g} µV)" for name, value in flagged.items())


def check_amplitudes(
    ch_names: Sequence[str], amplitudes: Sequence[float], config: PreprocessingConfig,
    where: str, subject: str, smallest: Sequence[float] | None = None,
) -> dict[str, float]:
    """Apply ``config.amplitude_action`` to the channels outside the limits (see
    :func:`implausible_channels` for ``amplitudes`` and ``smallest``).

    Returns
    -------
    dict of str to float
        Flagged channel -> robust peak-to-peak amplitude in µV (empty when all pass).

    Raises
    ------
    DataError
        With ``amplitude_action: refuse``, when any channel is outside the limits: the
        message names the subject, channels, values, limits and the fixes.
    """
    flagged = implausible_channels(ch_names, amplitudes, config, smallest)
    if not flagged:
        return flagged
    what = (f"{where}: channel(s) {describe(flagged)} have a robust peak-to-peak amplitude "
            f"(99.9th - 0.1th percentile after the band-pass) {_limits(config)}: "
            "mis-scaled, railing, disconnected or flat")
    if config.amplitude_action == "refuse":
        raise DataError(
            f"{what}; the common average would spread them to every channel. Drop the "
            "channel(s) (dataset.channels for kind folder, dataset.paradigm_params.channels "
            f"for moabb), leave subject {subject} out (list the other subjects' numbers in "
            "dataset.subjects), or, if these amplitudes are real, widen the limits (or set "
            "preprocessing.amplitude_action: warn to keep the subject and flag it)"
        )
    logger.warning("%s; kept (preprocessing.amplitude_action: warn)", what)
    return flagged

"""XDF recordings (Lab Streaming Layer) as :class:`mne.io.RawArray`, for the folder loader.

Needs pyxdf (optional extra ``pip install eegcrp[xdf]``). The EEG stream (by name, or the
first stream of type EEG) becomes the data, the marker stream (by name, or the first stream
of type Markers) the annotations. Channel labels, types and units come from the stream's
``desc/channels/channel`` entries. Units: a channel's ``unit`` (microvolts, millivolts,
volts, nanovolts) is honoured; EEG channels without a unit are assumed to be in microvolts
(the LSL convention of most amplifiers) and converted to volts.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mne
import numpy as np

from ..errors import DataError

__all__ = ["XDF_EXTENSIONS", "read_xdf"]

logger = logging.getLogger(__name__)

#: File endings of XDF recordings (lower case).
XDF_EXTENSIONS = (".xdf", ".xdfz")

_UNITS = {
    "v": 1.0, "volt": 1.0, "volts": 1.0,
    "mv": 1e-3, "millivolt": 1e-3, "millivolts": 1e-3,
    "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "microvolt": 1e-6, "microvolts": 1e-6,
    "nv": 1e-9, "nanovolt": 1e-9, "nanovolts": 1e-9,
}
_TYPES = {"eeg": "eeg", "eog": "eog", "ecg": "ecg", "emg": "emg", "misc": "misc",
          "stim": "stim", "trigger": "stim", "trig": "stim", "resp": "resp"}


def _first(mapping: Any, key: str) -> Any:
    """``mapping[key][0]`` of pyxdf's XML dicts, or None."""
    if not isinstance(mapping, dict):
        return None
    value = mapping.get(key)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _stream_label(stream: dict[str, Any]) -> str:
    info = stream.get("info", {})
    return f"{_first(info, 'name')!r} (type {_first(info, 'type')!r})"


def _choose(
    streams: list[dict[str, Any]], name: str | None, kind: str, key: str, path: Path
) -> dict[str, Any]:
    """The stream called ``name``, else the first stream of type ``kind``."""
    available = [_stream_label(s) for s in streams]
    for stream in streams:
        info = stream.get("info", {})
        if name is not None:
            if _first(info, "name") == name:
                return stream
        elif str(_first(info, "type") or "").lower() == kind.lower():
            return stream
    what = f"no stream named {name!r}" if name is not None else f"no stream of type {kind}"
    raise DataError(
        f"{path}: {what} (streams: {available}); set dataset.{key} to the name of the "
        f"{kind} stream"
    )


@contextlib.contextmanager
def _capture_errors(name: str) -> Iterator[list[str]]:
    """Collect ERROR records of logger ``name`` (pyxdf logs corruption instead of raising)."""
    messages: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Handler(level=logging.ERROR)
    log = logging.getLogger(name)
    log.addHandler(handler)
    try:
        yield messages
    finally:
        log.removeHandler(handler)


def read_xdf(
    path: Path, eeg_stream: str | None = None, marker_stream: str | None = None
) -> mne.io.RawArray:
    """Read an XDF recording into :class:`mne.io.RawArray` with the markers as annotations.

    Parameters
    ----------
    path : Path
        The ``.xdf`` (or gzip-compressed ``.xdfz``) file.
    eeg_stream : str | None
        Name of the EEG stream; None = the first stream of type ``EEG``.
    marker_stream : str | None
        Name of the marker stream; None = the first stream of type ``Markers``.

    Returns
    -------
    mne.io.RawArray
        Data in volts (channel units honoured, EEG without unit assumed µV), annotations at
        the marker times relative to the first EEG sample.

    Raises
    ------
    DataError
        If pyxdf is missing, the file is corrupt, or a stream is missing or unusable.
    """
    try:
        pyxdf = importlib.import_module("pyxdf")
    except ImportError as exc:
        raise DataError(
            f"{path}: reading XDF needs pyxdf ({exc}); install the optional extra: "
            "pip install eegcrp[xdf]"
        ) from exc
    try:
        with _capture_errors("pyxdf") as errors:
            streams, _ = pyxdf.load_xdf(str(path))
    except Exception as exc:  # pyxdf raises OSError, ValueError, struct/XML errors ...
        raise DataError(
            f"{path} could not be read as XDF ({type(exc).__name__}: {exc}); the file is "
            "corrupt or truncated: copy it again from the recording computer"
        ) from exc
    if errors:
        raise DataError(
            f"{path} is damaged: pyxdf reports {errors[0]!r}; the file is corrupt or "
            "truncated: copy it again from the recording computer"
        )
    eeg = _choose(streams, eeg_stream, "EEG", "xdf_eeg_stream", path)
    markers = _choose(streams, marker_stream, "Markers", "xdf_marker_stream", path)
    info = eeg["info"]
    try:
        sfreq = float(_first(info, "nominal_srate"))
    except (TypeError, ValueError):
        sfreq = 0.0
    values = np.asarray(eeg["time_series"])
    stamps = np.asarray(eeg["time_stamps"], dtype=float)
    if sfreq <= 0:
        raise DataError(
            f"{path}: EEG stream {_stream_label(eeg)} has no nominal sampling rate; pick the "
            "regularly sampled EEG stream with dataset.xdf_eeg_stream"
        )
    if values.ndim != 2 or values.shape[0] < 2 or values.dtype.kind not in "iuf":
        raise DataError(
            f"{path}: EEG stream {_stream_label(eeg)} holds no numeric samples (shape "
            f"{values.shape}); the recording is empty or the wrong stream was picked "
            "(dataset.xdf_eeg_stream)"
        )
    names, types, scales = _channel_info(info, values.shape[1], path)
    data = values.T.astype(np.float64) * np.asarray(scales)[:, None]
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, types), verbose="error")
    onsets, descriptions = [], []
    duration = values.shape[0] / sfreq
    marker_values = markers["time_series"]
    for stamp, value in zip(markers["time_stamps"], marker_values, strict=True):
        onset = float(stamp) - float(stamps[0])
        if not 0 <= onset < duration:
            continue
        item = value[0] if len(value) else ""
        if isinstance(item, (float, np.floating)) and float(item).is_integer():
            item = int(item)
        onsets.append(onset)
        descriptions.append(str(item))
    skipped = len(marker_values) - len(onsets)
    if skipped:
        logger.warning("%s: %d marker(s) lie outside the EEG recording; ignored", path, skipped)
    raw.set_annotations(mne.Annotations(onsets, np.zeros(len(onsets)), descriptions))
    return raw


def _channel_info(
    info: dict[str, Any], n_channels: int, path: Path
) -> tuple[list[str], list[str], list[float]]:
    """Channel names, MNE types and scale factors to volts from an XDF stream header."""
    listing = _first(_first(info, "desc"), "channels")
    channels = listing.get("channel") or [] if isinstance(listing, dict) else []
    labels = [str(_first(ch, "label") or "") for ch in channels]
    if len(channels) != n_channels or not all(labels) or len(set(labels)) != n_channels:
        logger.warning(
            "%s: the EEG stream has no unique channel labels for its %d channels; naming them "
            "Ch1..Ch%d (map them to 10-05 names with dataset.rename)",
            path, n_channels, n_channels,
        )
        labels = [f"Ch{i}" for i in range(1, n_channels + 1)]
        channels = [{} for _ in range(n_channels)]
    types, scales, assumed = [], [], 0
    for ch in channels:
        kind = _TYPES.get(str(_first(ch, "type") or "eeg").strip().lower(), "misc")
        unit = str(_first(ch, "unit") or "").strip().lower()
        if unit in _UNITS:
            scale = _UNITS[unit]
        elif kind in ("eeg", "eog", "ecg", "emg"):
            scale, assumed = 1e-6, assumed + 1
        else:
            scale = 1.0
        types.append(kind)
        scales.append(scale)
    if assumed:
        logger.info("%s: %d channel(s) without a known unit assumed in microvolts", path, assumed)
    return labels, types, scales

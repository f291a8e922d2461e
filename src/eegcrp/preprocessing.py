"""Preprocessing of trial epochs into model-ready windows, with an on-disk cache.

Per subject, in this order (defaults from the thesis):

1. band-pass (zero-phase FIR, :func:`mne.filter.filter_data`), default 1-60 Hz;
2. notch at the recording site's mains frequency and its harmonics up to the low-pass edge;
3. resampling to 128 Hz (polyphase, anti-aliased);
4. windowing: windows of ``window`` seconds every ``step * window`` seconds, inside each trial
   only (a window never crosses a trial boundary; a trial shorter than a window is dropped
   with a warning);
5. common-average reference of each window (optional, default on);
6. z-scoring of each window over channels x time (optional, default off: the cache keeps
   physical units so that spectra, topographies and ICA stay meaningful; the training stage
   normalises each window itself).

Filtering runs on trials, before windowing, so window edges carry no filter transients.

Cache layout (``<cache_dir>/<dataset kind>-<key>/``)::

    manifest.json                  configs, versions and per-subject summary (written last)
    sub-<id>-<files hash>-epo.fif  one MNE epochs file per subject

``key`` hashes the dataset config (without the subject selection) and the preprocessing
config, so a changed config never reuses stale data, while a run on a subset of subjects
reuses the subjects it shares with earlier runs. The per-subject ``files hash`` covers the
names, sizes and modification times of the subject's source files. Every file is written
to a temporary name and renamed, so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from .config import PreprocessingConfig, StudyConfig, config_hash
from .data.base import BaseLoader, DataError, EEGDataset, check_finite
from .data.registry import get_loader
from .io import atomic_path, sha256_file, write_json_atomic

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_VERSION",
    "Preprocessor",
    "TrialsTooShortError",
    "cache_folder",
    "prepare",
]

#: Bumped whenever the cached content changes meaning; old caches are then ignored.
CACHE_VERSION = 1


class TrialsTooShortError(DataError):
    """A subject's trials are shorter than one window (all trials of an Epochs share a length)."""


class Preprocessor:
    """Turn one subject's trial epochs into preprocessed fixed-length windows.

    Parameters
    ----------
    config : PreprocessingConfig
        Filter, resampling, window and referencing settings.
    mains_freq : float | None
        Mains frequency of the recording site, used when ``config.notch == 'auto'``.
    """

    def __init__(self, config: PreprocessingConfig, mains_freq: float | None = None) -> None:
        self.config = config
        self.mains_freq = mains_freq

    # ------------------------------------------------------------------ pieces
    def notch_freqs(self, sfreq: float) -> list[float]:
        """Notch frequencies for data at ``sfreq`` (mains and harmonics up to the low-pass)."""
        cfg = self.config
        if cfg.notch == "none":
            return []
        base = self.mains_freq if cfg.notch == "auto" else float(cfg.notch)
        if base is None:
            return []
        top = sfreq / 2 - 1.0
        if cfg.h_freq is not None:
            top = min(top, cfg.h_freq * 1.25)
        return [float(k * base) for k in range(1, int(top // base) + 1)]

    def _check_rate(self, sfreq: float, where: str) -> None:
        h = self.config.h_freq
        if h is not None and sfreq < 2 * h:
            raise DataError(
                f"{where} is sampled at {sfreq} Hz, below twice the band-pass upper edge "
                f"({h} Hz); set preprocessing.h_freq to at most {sfreq / 2:g} Hz"
            )

    def filter(self, data: np.ndarray, sfreq: float) -> np.ndarray:
        """Band-pass and notch ``data`` (..., n_times) sampled at ``sfreq``."""
        cfg = self.config
        with _mne_warnings_to_log():
            if cfg.l_freq is not None or cfg.h_freq is not None:
                h = cfg.h_freq if cfg.h_freq is None or cfg.h_freq < sfreq / 2 else None
                data = mne.filter.filter_data(data, sfreq, cfg.l_freq, h, verbose="error")
            freqs = self.notch_freqs(sfreq)
            if freqs:
                data = mne.filter.notch_filter(data, sfreq, freqs, verbose="error")
        return data

    def resample(self, data: np.ndarray, sfreq: float) -> np.ndarray:
        """Resample the last axis from ``sfreq`` to ``config.sfreq`` (polyphase)."""
        target = self.config.sfreq
        if np.isclose(sfreq, target):
            return data
        ratio = Fraction(target / sfreq).limit_denominator(1000)
        with _mne_warnings_to_log():
            return mne.filter.resample(
                data, up=float(ratio.numerator), down=float(ratio.denominator),
                method="polyphase", verbose="error",
            )

    def window_starts(self, n_times: int) -> np.ndarray:
        """Start samples of the windows that fit entirely inside a trial of ``n_times``."""
        win = self.window_samples
        step = max(1, int(round(self.config.step * win)))
        if n_times < win:
            return np.empty(0, dtype=int)
        return np.arange(0, n_times - win + 1, step)

    @property
    def window_samples(self) -> int:
        """Window length in samples at the target rate."""
        return int(round(self.config.window * self.config.sfreq))

    # ------------------------------------------------------------------ main
    def transform(self, epochs: mne.BaseEpochs, subject: str | None = None) -> mne.EpochsArray:
        """Preprocess one subject's trial epochs into windows.

        Parameters
        ----------
        epochs : mne.BaseEpochs
            Trials of one subject (as returned by a loader).
        subject : str | None
            Subject id for messages; default: the metadata's ``subject`` column.

        Returns
        -------
        mne.EpochsArray
            Windows at ``config.sfreq`` with metadata columns ``subject``, ``trial``,
            ``window``, ``window_start`` (seconds into the trial) and the loader's columns.
        """
        cfg = self.config
        if subject is None:
            subject = str(epochs.metadata["subject"].iloc[0]) if epochs.metadata is not None \
                else "?"
        where = f"subject {subject}"
        sfreq = float(epochs.info["sfreq"])
        self._check_rate(sfreq, where)
        data = epochs.get_data(copy=True)
        check_finite(data, where)
        data = self.resample(self.filter(data, sfreq), sfreq)
        n_times = data.shape[-1]
        starts = self.window_starts(n_times)
        win = self.window_samples
        if len(starts) == 0:
            raise TrialsTooShortError(
                f"{where}: trials are {n_times / cfg.sfreq:.2f} s long after resampling, shorter "
                f"than preprocessing.window ({cfg.window} s); lower the window length"
            )
        # trial x window x channel x time -> (trial*window) x channel x time
        windows = np.stack([data[..., s:s + win] for s in starts], axis=1)
        n_trials, n_win = windows.shape[:2]
        windows = windows.reshape(n_trials * n_win, *windows.shape[2:])
        if cfg.car:
            windows = windows - windows.mean(axis=1, keepdims=True)
        if cfg.zscore:
            std = windows.std(axis=(1, 2), keepdims=True)
            if np.any(std == 0):
                raise DataError(f"{where}: a window is flat (zero variance); remove dead trials")
            windows = (windows - windows.mean(axis=(1, 2), keepdims=True)) / std
        # Round to float32 now so fresh results equal what the (float32) cache returns.
        windows = windows.astype(np.float32).astype(np.float64)

        codes = np.repeat(epochs.events[:, 2], n_win)
        meta = epochs.metadata.reset_index(drop=True) if epochs.metadata is not None \
            else pd.DataFrame({"subject": [subject] * len(epochs)})
        if "trial" not in meta:
            meta["trial"] = np.arange(len(epochs))
        meta = meta.loc[np.repeat(np.arange(n_trials), n_win)].reset_index(drop=True)
        meta["window"] = np.tile(np.arange(n_win), n_trials)
        meta["window_start"] = np.tile(starts / cfg.sfreq, n_trials)

        info = mne.create_info(epochs.ch_names, cfg.sfreq, ch_types=epochs.get_channel_types())
        with info._unlock():
            info["line_freq"] = epochs.info["line_freq"]
            info["subject_info"] = epochs.info.get("subject_info")
            info["highpass"] = cfg.l_freq if cfg.l_freq is not None else 0.0
            info["lowpass"] = cfg.h_freq if cfg.h_freq is not None else cfg.sfreq / 2
        events = np.column_stack([np.arange(len(codes)) * win, np.zeros(len(codes), int), codes])
        out = mne.EpochsArray(windows, info, events=events.astype(int),
                              event_id=dict(epochs.event_id), metadata=meta,
                              on_missing="ignore", verbose="error")
        montage = epochs.get_montage()
        if montage is not None:
            out.set_montage(montage, verbose="error")
        if cfg.car:
            # Record the reference as MNE's set_eeg_reference would (ICLabel reads the flag).
            with out.info._unlock():
                out.info["custom_ref_applied"] = mne.io.constants.FIFF.FIFFV_MNE_CUSTOM_REF_ON
        return out


# --------------------------------------------------------------------------- cache
@contextlib.contextmanager
def _mne_warnings_to_log() -> Iterator[None]:
    """Route MNE's RuntimeWarnings (e.g. filter longer than a trial) to the logger."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        yield
    for w in caught:
        logger.warning("%s", w.message)


def _files_hash(paths: list[Path]) -> str:
    entries = []
    for p in paths:
        st = Path(p).stat()
        entries.append([Path(p).name, st.st_size, st.st_mtime_ns])
    return config_hash({"files": entries}, length=10)


def cache_key(config: StudyConfig) -> str:
    """Key of a dataset + preprocessing configuration (subject selection excluded)."""
    dataset = config.dataset.model_dump(mode="json", exclude={"subjects"})
    return config_hash(
        {"v": CACHE_VERSION, "dataset": dataset,
         "preprocessing": config.preprocessing.model_dump(mode="json")}
    )


def cache_folder(config: StudyConfig) -> Path:
    """Folder holding the cached windows of this configuration."""
    return config.resolved_cache_dir() / f"{config.dataset.kind}-{cache_key(config)}"


def _subject_file(folder: Path, loader: BaseLoader, subject: str) -> Path:
    files = loader.files(subject)
    tag = _files_hash(files) if files else "nofiles"
    return folder / f"sub-{subject}-{tag}-epo.fif"


def prepare(
    config: StudyConfig, *, progress: bool = True, use_cache: bool = True
) -> EEGDataset:
    """Load and preprocess a study's dataset, reading and filling the cache.

    Parameters
    ----------
    config : StudyConfig
        The study configuration (``dataset`` and ``preprocessing`` sections are used).
    progress : bool
        Show a progress bar over subjects.
    use_cache : bool
        Read cached subjects if present (they are always written).

    Returns
    -------
    EEGDataset
        Windows of every subject, validated for leave-one-subject-out use.
    """
    from tqdm.auto import tqdm

    loader = get_loader(config.dataset)
    subjects = loader.subject_ids()
    pre = Preprocessor(config.preprocessing, loader.site_mains_freq())
    folder = cache_folder(config)
    folder.mkdir(parents=True, exist_ok=True)
    epochs: dict[str, mne.BaseEpochs] = {}
    hits = 0
    bar = tqdm(subjects, desc=f"prepare {config.dataset.kind}", unit="subject",
               disable=not progress)
    paths: dict[str, Path] = {}
    for subject in bar:
        bar.set_postfix_str(subject)
        path = paths[subject] = _subject_file(folder, loader, subject)
        if use_cache and path.exists():
            epochs[subject] = mne.read_epochs(path, preload=True, verbose="error")
            hits += 1
            continue
        try:
            windows = pre.transform(loader.load_subject(subject), subject)
        except TrialsTooShortError as exc:
            logger.warning("%s; subject %s is dropped", exc, subject)
            continue
        with atomic_path(path, "-epo.fif") as tmp:
            windows.save(tmp, overwrite=True, fmt="single", verbose="error")
        epochs[subject] = windows
    logger.info("prepare: %d of %d subjects read from cache %s", hits, len(subjects), folder)
    dataset = EEGDataset(
        loader.name,
        epochs,
        loader.task,
        loader.site_mains_freq(),
        info={"cache": str(folder), "source": _source(loader, subjects), "cache_hits": hits},
    )
    _merge_loader_info(dataset, loader)
    dataset.info["cache_files"] = {
        s: {"windows": str(paths[s].resolve()), "sha256": {"windows": sha256_file(paths[s])}}
        for s in epochs
    }
    dataset.validate()
    manifest = {
        "eegcrp_cache_version": CACHE_VERSION,
        "key": cache_key(config),
        "dataset": config.dataset.model_dump(mode="json"),
        "preprocessing": config.preprocessing.model_dump(mode="json"),
        "subjects": {s: paths[s].name for s in epochs},
        "classes": dataset.classes,
        "ch_names": dataset.ch_names,
        "sfreq": dataset.sfreq,
        "n_times": dataset.n_times,
        "versions": {"mne": mne.__version__, "numpy": np.__version__},
    }
    write_json_atomic(folder / "manifest.json", manifest)
    return dataset


def _source(loader: BaseLoader, subjects: list[str]) -> str:
    """The data folder, or the loader's name when it reads no files (simulated data)."""
    return str(loader.path) if subjects and loader.files(subjects[0]) else loader.name


def _merge_loader_info(dataset: EEGDataset, loader: BaseLoader) -> None:
    extra = getattr(loader, "dataset_info", None)
    if callable(extra):
        dataset.info.update(extra())

"""ICA per subject on the cached continuous data, labelled with ICLabel, stored as netCDF-4.

The data ICA sees are the preprocessing cache's filtered continuous recording of the subject
(:func:`eegcrp.preprocessing.cache.load_continuous`): volts, common-average referenced, never
z-scored. ICLabel was trained on extended-infomax decompositions of 1-100 Hz, average
referenced EEG; the cache is restricted to ``sources.band`` where it is wider (a band is
never widened: a cache at 128 Hz holds at most 64 Hz), and every violated assumption is
stated with its fix. The unmixing is spatial, so a decomposition fitted on the cached band
applies unchanged to the model's windows, which are cuts of the same data.

Components: ``n_components='rank'`` keeps as many as the data have rank (CAR removes one);
an int or a variance share keeps fewer, and the rest becomes the residual term of the
virtual layer (:mod:`.virtual`). The seed of subject ``s`` is drawn from
``(sources.seed, crc32(s))``: the same config gives the same decomposition.

In volts, with ``U`` the unmixing (K x C), ``A`` the mixing (C x K) and ``m`` the PCA
mean: ``s(t) = U (x(t) - m)`` and ``x(t) = A s(t) + r(t)``, where ``r`` (the mean plus the
principal components not kept) is exactly ``x - A s``.
"""

from __future__ import annotations

import inspect
import logging
import warnings
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mne
import numpy as np
import xarray as xr

from ..errors import EEGCRPError
from ..evidence import iclabel_conditions, pooled_conditions
from ..netcdf import read_attributes, read_netcdf, write_netcdf

logger = logging.getLogger(__name__)

__all__ = [
    "CATEGORIES",
    "ICLABEL_CLASSES",
    "MIN_CHANNELS",
    "ICAConvergenceError",
    "SourcesError",
    "SubjectICA",
    "check_channels",
    "fit_subject",
    "ica_data",
    "study_conditions",
    "subject_seed",
]

#: ICLabel's classes, in the order of its probabilities.
ICLABEL_CLASSES = ("brain", "muscle artifact", "eye blink", "heart beat", "line noise",
                   "channel noise", "other")
#: Short names of the ICLabel classes (same order) and the virtual layer's residual term.
CATEGORIES = ("brain", "muscle", "eye", "heart", "line_noise", "channel_noise", "other",
              "residual")
#: Fewest EEG channels an ICA with ICLabel is fitted on.
MIN_CHANNELS = 4

_BIPOLAR = mne.io.constants.FIFF.FIFFV_COIL_EEG_BIPOLAR


class SourcesError(EEGCRPError, RuntimeError):
    """ICA or ICLabel cannot be applied to these data; the message names the fix."""


class ICAConvergenceError(SourcesError):
    """The ICA of one subject did not converge (the stage records it and goes on)."""


def subject_seed(seed: int, subject: str) -> int:
    """The ICA seed of one subject: independent of the other subjects and of their order."""
    seq = np.random.SeedSequence([int(seed), zlib.crc32(str(subject).encode())])
    return int(seq.generate_state(1)[0] % (2**31 - 1))


def check_channels(info: mne.Info) -> None:
    """Refuse data ICLabel cannot label: non-EEG or bipolar channels, missing positions,
    fewer than :data:`MIN_CHANNELS` channels.

    Every channel of the model's windows must be in the decomposition, so none may be left
    out: the message says how to drop or skip.

    Raises
    ------
    SourcesError
    """
    skip = "or skip this stage (--set sources.enabled=false)"
    types = info.get_channel_types()
    other = sorted({t for t in types if t != "eeg"})
    if other:
        names = [n for n, t in zip(info["ch_names"], types, strict=True) if t != "eeg"][:5]
        raise SourcesError(
            f"ICLabel classifies components of EEG channels only; these data have channels "
            f"of type {other} (e.g. {names}). Drop them from the dataset (dataset.channels) "
            f"{skip}"
        )
    bipolar = [ch["ch_name"] for ch in info["chs"] if int(ch.get("coil_type", 0)) == _BIPOLAR]
    if bipolar:
        raise SourcesError(
            f"channels {bipolar[:5]} are bipolar derivations: they have no scalp position, so "
            f"ICLabel (which reads component topographies) cannot label them; {skip}"
        )
    if len(types) < MIN_CHANNELS:
        raise SourcesError(
            f"ICA with ICLabel needs at least {MIN_CHANNELS} EEG channels, the data have "
            f"{len(types)}; {skip}"
        )
    from ..data.montage import missing_positions

    missing = missing_positions(info)
    if missing:
        raise SourcesError(
            f"channels {missing[:5]} have no scalp position, which ICLabel needs for the "
            f"component topographies; set a montage in the dataset config {skip}"
        )


def ica_data(raw: mne.io.BaseRaw, band: tuple[float, float], data: str = "continuous"
             ) -> tuple[mne.io.BaseRaw, list[str]]:
    """The data ICA is fitted on, and notes on what was done to them.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The cached continuous data of one subject (``trial/<class>`` annotations).
    band : (float, float)
        Target band in Hz; the data are filtered to it only where they are wider.
    data : {'continuous', 'trials'}
        The whole recording, or its trials joined (with ``BAD boundary`` marks).
    """
    notes: list[str] = []
    raw = raw.copy().pick("eeg")
    if data == "trials":
        trials = [a for a in raw.annotations if a["description"].startswith("trial/")]
        if not trials:
            raise SourcesError("the cached data have no trial annotations; use "
                               "sources.data: continuous")
        # crop_by_annotations keeps the end sample: stop one sample earlier
        step = 1.0 / raw.info["sfreq"]
        ann = mne.Annotations([a["onset"] for a in trials],
                              [a["duration"] - step for a in trials],
                              [a["description"] for a in trials],
                              orig_time=raw.annotations.orig_time)
        raw = mne.concatenate_raws(raw.crop_by_annotations(ann, verbose="error"),
                                   verbose="error")
        notes.append(f"fitted on the {len(trials)} trials only ({raw.times[-1]:.0f} s)")
    low, high = band
    hp, lp, sfreq = float(raw.info["highpass"]), float(raw.info["lowpass"]), raw.info["sfreq"]
    l_freq = low if hp < low else None
    h_freq = high if lp > high and high < sfreq / 2 else None
    if l_freq is not None or h_freq is not None:
        raw.filter(l_freq, h_freq, fir_design="firwin", verbose="error")
    return raw, notes + _band_note(raw.info)


def _band_note(info: mne.Info) -> list[str]:
    """The note on a band other than ICLabel's 1-100 Hz, with the fix."""
    got, sfreq = (float(info["highpass"]), float(info["lowpass"])), info["sfreq"]
    if got == (1.0, 100.0):
        return []
    return [f"ICLabel expects data filtered to 1-100 Hz; the ICA data hold {got[0]:g}-"
            f"{got[1]:g} Hz, the widest band the cache allows (preprocessing band, sampling "
            f"rate {sfreq:g} Hz, Nyquist {sfreq / 2:g} Hz). For labels under ICLabel's "
            "conditions set preprocessing.h_freq: 100 and preprocessing.sfreq >= 256 (the "
            "model then sees that band too); the labels may be less reliable meanwhile"]


def _rank(data: np.ndarray) -> int:
    """Numerical rank of channels x samples data (CAR removes one; float32 storage leaves
    the removed direction at ~1e-14 of the largest eigenvalue)."""
    eig = np.linalg.eigvalsh(np.cov(data))
    return int((eig > eig.max() * 1e-9).sum()) if eig.max() > 0 else 0


def _n_components(value: str | int | float, rank: int) -> int | float:
    if value == "rank":
        return rank
    if isinstance(value, int) and value > rank:
        raise SourcesError(f"sources.n_components is {value}, the data have rank {rank} (CAR "
                           f"removes one); use 'rank' or at most {rank}")
    return value


def _ica(n_components: int | float, method: str, max_iter: int, seed: int
         ) -> mne.preprocessing.ICA:
    fit_params = {"extended": True} if method == "infomax" else {"ortho": False,
                                                                  "extended": True}
    kwargs: dict[str, Any] = {"n_components": n_components, "method": method,
                              "fit_params": fit_params, "max_iter": max_iter}
    # MNE 1.13 renamed random_state to rng
    key = "rng" if "rng" in inspect.signature(mne.preprocessing.ICA).parameters else \
        "random_state"
    kwargs[key] = seed
    return mne.preprocessing.ICA(**kwargs)


@dataclass
class SubjectICA:
    """One subject's decomposition and labels (all arrays float64, volts).

    Attributes
    ----------
    subject : str
    ch_names : list of str
    unmixing : ndarray (K, C)
        Sources ``s = unmixing @ (x - mean)``.
    mixing : ndarray (C, K)
        Component topographies in volts per source unit; ``x = mixing @ s + residual``.
    mean : ndarray (C,)
        The PCA mean the sources are centred on (volts).
    probabilities : ndarray (K, 7)
        ICLabel's class probabilities (:data:`ICLABEL_CLASSES` order).
    explained_variance : ndarray (K,)
        Share of the ICA data's variance (summed over channels) each component explains.
    meta : dict
        Method, seed, iterations, rank, band, sample count, notes.
    """

    subject: str
    ch_names: list[str]
    unmixing: np.ndarray
    mixing: np.ndarray
    mean: np.ndarray
    probabilities: np.ndarray
    explained_variance: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_components(self) -> int:
        return int(self.unmixing.shape[0])

    @property
    def label_index(self) -> np.ndarray:
        """Index of each component's most probable ICLabel class."""
        return np.argmax(self.probabilities, axis=1)

    @property
    def labels(self) -> list[str]:
        """Short category of each component (:data:`CATEGORIES`)."""
        return [CATEGORIES[i] for i in self.label_index]

    def sources(self, x: np.ndarray) -> np.ndarray:
        """Source time courses of channels x time data (or windows x channels x time)."""
        x = np.asarray(x, np.float64)
        return np.einsum("kc,...ct->...kt", self.unmixing, x - self.mean[:, None])

    def record(self) -> dict[str, Any]:
        """What a manifest says of the decomposition: size, labels, fit, and what
        :func:`study_conditions` checks."""
        fit = self.meta.get("fit_params", {})
        return {"n_components": self.n_components, "labels": dict(Counter(self.labels)),
                "n_iter": self.meta.get("n_iter"), "band": self.meta.get("band"),
                "notes": self.meta.get("notes", []), "n_channels": len(self.ch_names),
                "n_samples": self.meta.get("n_samples"),
                # picard(ortho=False, extended=True) is extended infomax; so is MNE's
                # infomax with extended=True
                "extended_infomax": bool(fit.get("extended")) and fit.get("ortho") is not True}

    # ------------------------------------------------------------------ storage
    def to_dataset(self, attrs: dict[str, Any] | None = None) -> xr.Dataset:
        """The decomposition as a labelled dataset (dims component, channel,
        iclabel_class)."""
        comp, chan = ("component",), ("channel",)
        return xr.Dataset(
            {"unmixing": (comp + chan, self.unmixing), "mixing": (chan + comp, self.mixing),
             "mean": (chan, self.mean),
             "probabilities": ((*comp, "iclabel_class"), self.probabilities),
             "explained_variance": (comp, self.explained_variance),
             "label": (comp, list(self.labels))},
            coords={"channel": list(self.ch_names), "iclabel_class": list(ICLABEL_CLASSES),
                    "component": np.arange(self.n_components)},
            attrs={**(attrs or {}), "subject": str(self.subject), "meta": self.meta})

    def save(self, path: str | Path, attrs: dict[str, Any] | None = None) -> None:
        """Write :meth:`to_dataset` atomically as netCDF-4 (:mod:`eegcrp.netcdf`)."""
        write_netcdf(self.to_dataset(attrs), path)

    @staticmethod
    def stored_attribute(path: str | Path, name: str) -> str | None:
        """A string attribute :meth:`save` wrote (``identity``, ``memo_key``); None when
        absent or the file is unreadable."""
        value = (read_attributes(path, [name]) or {}).get(name)
        return None if value is None else str(value)

    @classmethod
    def load(cls, path: str | Path) -> SubjectICA:
        """Read a file written by :meth:`save`."""
        ds = read_netcdf(path)
        arrays = {name: ds[name].values for name in ("unmixing", "mixing", "mean",
                                                     "probabilities", "explained_variance")}
        meta = ds.attrs.get("meta", {})
        return cls(str(ds.attrs["subject"]), [str(c) for c in ds["channel"].values],
                   meta=dict(meta), **arrays)


def study_conditions(records: Mapping[str, dict[str, Any]], *, car: bool, min_channels: int,
                     samples_factor: float) -> list[dict[str, Any]]:
    """ICLabel's conditions (:func:`eegcrp.evidence.iclabel_conditions`) of each subject's
    decomposition (its :meth:`SubjectICA.record`), pooled over subjects."""
    return pooled_conditions({s: iclabel_conditions(
        n_channels=int(r["n_channels"]), band=tuple(r["band"]), car=bool(car),
        n_samples=int(r["n_samples"]), n_components=int(r["n_components"]),
        extended_infomax=bool(r["extended_infomax"]), min_channels=min_channels,
        samples_factor=samples_factor) for s, r in records.items()})


def _label(raw: mne.io.BaseRaw, ica: mne.preprocessing.ICA) -> tuple[np.ndarray, list[str]]:
    """ICLabel probabilities (K, 7), with mne-icalabel's warnings turned into notes."""
    from mne_icalabel.iclabel import iclabel_label_components

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proba = iclabel_label_components(raw, ica, inplace=False)
    notes = []
    for w in caught:
        text = str(w.message)
        if "filtered between 1 and 100" in text:
            continue  # stated by ica_data, with the fix
        if "common average" in text:
            text += " Fix: set preprocessing.car: true."
        notes.append(f"mne-icalabel: {text}")
    return np.asarray(proba, np.float64), notes


def fit_subject(raw: mne.io.BaseRaw | mne.BaseEpochs, subject: str, *, method: str = "picard",
                n_components: str | int | float = "rank", band: tuple[float, float] = (1, 100),
                data: str = "continuous", max_iter: int = 1000, seed: int = 0,
                min_samples_factor: float = 20.0) -> SubjectICA:
    """Fit ICA on one subject's cached continuous data and label it with ICLabel.

    Parameters
    ----------
    raw : mne.io.BaseRaw | mne.BaseEpochs
        The cached continuous data (volts, CAR, not z-scored); epochs (e.g. a cluster's
        selected windows, :mod:`.cluster`) are used as they are: not filtered, ``band``
        and ``data`` do not apply.
    subject : str
        Names the decomposition (and seeds it).
    method, n_components, band, data, max_iter, min_samples_factor
        See :class:`eegcrp.config.SourcesConfig`.
    seed : int
        The study's sources seed (the subject's own is derived from it).

    Raises
    ------
    SourcesError
        Unusable channels (:func:`check_channels`) or a failed fit.
    ICAConvergenceError
        When the ICA did not converge within ``max_iter`` iterations.
    """
    check_channels(raw.info)
    if isinstance(raw, mne.BaseEpochs):
        fit_raw, notes = raw.copy().pick("eeg"), _band_note(raw.info)
        x = np.concatenate(list(fit_raw.get_data()), axis=-1)
    else:
        fit_raw, notes = ica_data(raw, band, data)
        x = fit_raw.get_data(reject_by_annotation="omit")
    rank = _rank(x)
    n = _n_components(n_components, rank)
    own_seed = subject_seed(seed, subject)
    ica = _ica(n, method, max_iter, own_seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ica.fit(fit_raw, verbose="error")
        except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
            raise SourcesError(f"ICA of subject {subject} failed: {exc}") from exc
    n_iter = int(getattr(ica, "n_iter_", 0) or 0)
    unconverged = [str(w.message) for w in caught if "converge" in str(w.message).lower()]
    if unconverged or n_iter >= max_iter:
        raise ICAConvergenceError(
            f"the ICA of subject {subject} did not converge in {max_iter} iterations "
            f"({'; '.join(unconverged) or f'{n_iter} iterations'}); raise sources.max_iter, "
            "lower sources.n_components, or check the subject's data for flat or broken "
            "channels"
        )
    k = int(ica.n_components_)
    if x.shape[1] < min_samples_factor * k**2:
        most = int(np.sqrt(x.shape[1] / min_samples_factor))
        fix = ("use sources.data: continuous" if data == "trials" else
               f"set sources.n_components to at most {most}")
        notes.append(f"ICA on {x.shape[1]} samples for {k} components: fewer than "
                     f"{min_samples_factor:g} x {k}² (the usual rule of thumb); components "
                     f"may be unreliable ({fix}, or use longer recordings)")
    proba, label_notes = _label(fit_raw, ica)
    notes += label_notes
    pw = ica.pre_whitener_[:, 0].astype(np.float64)
    pca = ica.pca_components_[:k].astype(np.float64)
    unmixing = ica.unmixing_matrix_.astype(np.float64) @ pca / pw[None, :]
    mixing = pw[:, None] * (pca.T @ np.linalg.inv(ica.unmixing_matrix_.astype(np.float64)))
    mean = pw * ica.pca_mean_.astype(np.float64) if ica.pca_mean_ is not None else \
        np.zeros(len(pw))
    src = unmixing @ (x - mean[:, None])
    total = x.var(axis=1).sum()
    ev = (mixing**2).sum(0) * src.var(axis=1) / total if total > 0 else np.zeros(k)
    meta = {"method": method, "fit_params": dict(ica.fit_params), "seed": own_seed,
            "n_iter": n_iter, "max_iter": max_iter, "rank": rank, "n_components": k,
            "n_components_setting": n_components, "data": data, "n_samples": int(x.shape[1]),
            "sfreq": float(fit_raw.info["sfreq"]),
            "band": [float(fit_raw.info["highpass"]), float(fit_raw.info["lowpass"])],
            "notes": notes}
    for note in notes:  # the stage warns once per distinct note
        logger.info("subject %s: %s", subject, note)
    return SubjectICA(subject, list(fit_raw.ch_names), unmixing, mixing, mean, proba, ev, meta)

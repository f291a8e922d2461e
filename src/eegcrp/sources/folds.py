"""Component relevance of one explain fold: its selected heatmaps through the ICA layer.

For every selected (class, filter, window) row of an explain fold file the window in volts
is the prepared window of the same subject, trial and onset; the subject's decomposition
(:class:`.ica.SubjectICA`) splits it into component terms and a residual and
:func:`.virtual.ica_relevance` gives each term's relevance, in total and per DFT bin.

Fold file ``sources/folds/<fold>.nc`` (netCDF-4, :mod:`eegcrp.netcdf`):

====================================  ===============================================
attributes                            identity, name, repetition, subject, layer,
                                      classes, bands, categories, weightings,
                                      measures, input_space, n_pairs, n_skipped
                                      (windows of subjects without ICA), error_max,
                                      error_median
``class, filter, sample, rank`` (P)   as in the explain fold file (same row order)
``key``, ``window_subject`` (P)       global filter key, subject of the window
``component`` (P, K)                  relevance per component (NaN: padding, no ICA)
``residual, total, error`` (P)        residual term, heatmap total, conservation error
``component_band`` (P, K, B)          relevance per component and band
``residual_band`` (P, B)
``categories`` (P, 2, 3, 8)           weighting x measure x category
                                      (:mod:`.shares`, :data:`.ica.CATEGORIES`)
``component_spectrum`` (S, C, K, F)   per window subject ``summary_subject`` and class
``residual_spectrum`` (S, C, F),      index: relevance per bin summed over its rows
``summary_n_pairs`` (S, C)            (components past the subject's K are NaN), and
                                      the number of rows
``freq`` (F)                          DFT bin frequencies (Hz)
====================================  ===============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mne
import numpy as np
import pandas as pd
import xarray as xr

from ..netcdf import read_attributes, read_netcdf, write_netcdf
from ..relevance.spectral import band_sum
from ..store import FoldRelevance
from .ica import CATEGORIES, ICLABEL_CLASSES, SourcesError, SubjectICA
from .shares import MEASURES, WEIGHTINGS, category_relevance, unit_table
from .virtual import ica_relevance

__all__ = ["category_spectra", "component_table", "file_attrs", "fold_sources",
           "unit_table_of", "window_lookup", "window_subjects"]

def window_lookup(epochs: mne.BaseEpochs) -> dict[tuple[int, int], int]:
    """``(trial, onset in samples) -> row`` of a subject's prepared windows."""
    meta = epochs.metadata
    if meta is None or "trial" not in meta or "onset" not in meta:
        raise SourcesError("the prepared windows have no trial/onset metadata; re-run "
                           "`eegcrp prepare CONFIG --overwrite`")
    sfreq = epochs.info["sfreq"]
    keys = zip(meta["trial"].to_numpy(np.int64),
               np.round(meta["onset"].to_numpy(np.float64) * sfreq).astype(np.int64),
               strict=True)
    return {(int(t), int(o)): i for i, (t, o) in enumerate(keys)}


def _rows_of(windows: mne.BaseEpochs, lookup: dict[tuple[int, int], int],
             trial: np.ndarray, onset: np.ndarray, subject: str) -> np.ndarray:
    sfreq = windows.info["sfreq"]
    rows = []
    for t, o in zip(trial, onset, strict=True):
        key = (int(t), int(round(float(o) * sfreq)))
        if key not in lookup:
            raise SourcesError(f"window trial {t}, onset {o:.3f} s of subject {subject} is "
                               "not among the prepared windows; re-run `eegcrp explain`")
        rows.append(lookup[key])
    return np.asarray(rows, np.int64)


def fold_sources(
    fold: FoldRelevance,
    icas: Mapping[str, SubjectICA | None],
    windows: Mapping[str, mne.BaseEpochs],
    out_path: str | Path,
    *,
    standardized: bool,
    ddof: int = 0,
    attrs: dict[str, Any] | None = None,
    batch: int = 64,
) -> dict[str, Any]:
    """ICA relevance of every selected heatmap of one explain fold, written to ``out_path``.

    Parameters
    ----------
    fold : FoldRelevance
        The explain fold.
    icas : mapping
        Subject -> decomposition (None: its ICA failed; its rows are skipped, left NaN).
    windows : mapping
        Subject -> prepared windows (volts, not z-scored).
    out_path : str | Path
        The fold's sources file (written atomically).
    standardized : bool
        The heatmaps are relevance of the z-scored window (``input_space == "model"``).
    ddof : int
        The model's z-score ddof.
    attrs : dict | None
        Extra attributes (identity ...).
    batch : int
        Rows per computation.

    Returns
    -------
    dict
        The file's attributes (counts, conservation errors).
    """
    samples = fold.samples()
    pairs = fold.pairs()
    pcls, pfilt, psample, prank = (pairs[k].to_numpy() for k in ("class", "filter", "sample",
                                                                   "rank"))
    bands = fold.attrs.get("bands") or {}
    freqs = fold.freqs
    classes = fold.classes
    n = len(psample)
    subj = samples["subject"].to_numpy()[psample].astype(str)
    n_max = max([ica.n_components for s, ica in icas.items() if ica is not None
                 and s in set(subj)], default=1)
    n_bands = len(bands)
    comp = np.full((n, n_max), np.nan)
    comp_band = np.full((n, n_max, n_bands), np.nan)
    resid, total, error = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    resid_band = np.full((n, n_bands), np.nan)
    cats = np.full((n, len(WEIGHTINGS), len(MEASURES), len(CATEGORIES)), np.nan)
    summary: dict[str, dict[str, np.ndarray]] = {}
    lookups = {s: window_lookup(w) for s, w in windows.items()}
    for subject in sorted(set(subj)):
        ica = icas.get(subject)
        if ica is None:
            continue
        if list(ica.ch_names) != list(fold.ch_names):
            raise SourcesError(f"the ICA of subject {subject} has channels {ica.ch_names[:4]}"
                               f"..., the explain fold {fold.name} {fold.ch_names[:4]}...; "
                               "re-run `eegcrp sources CONFIG --overwrite`")
        idx = np.flatnonzero(subj == subject)
        trial = samples["trial"].to_numpy()[psample[idx]]
        onset = samples["onset"].to_numpy()[psample[idx]]
        rows = _rows_of(windows[subject], lookups[subject], trial, onset, subject)
        data = windows[subject].get_data(copy=False)
        k = ica.n_components
        spec_sum = np.zeros((len(classes), k, len(freqs)))
        res_sum = np.zeros((len(classes), len(freqs)))
        counts = np.zeros(len(classes), np.int64)
        for start in range(0, len(idx), batch):
            part = idx[start:start + batch]
            heat = fold.pair_rows("heatmaps", part)  # part is increasing
            x = data[rows[start:start + batch]]
            out = ica_relevance(x, heat, ica.unmixing, ica.mixing, ica.mean,
                                standardized=standardized, ddof=ddof)
            comp[part, :k] = out.component
            resid[part], total[part], error[part] = out.residual, out.total, out.error
            if n_bands:
                comp_band[part, :k] = band_sum(out.component_spectrum, freqs, bands)[0]
                resid_band[part] = band_sum(out.residual_spectrum, freqs, bands)[0]
            for (w, m), values in category_relevance(out.component, out.residual,
                                                     ica.probabilities).items():
                cats[part, WEIGHTINGS.index(w), MEASURES.index(m)] = values
            c = pcls[part]
            np.add.at(spec_sum, c, out.component_spectrum)
            np.add.at(res_sum, c, out.residual_spectrum)
            np.add.at(counts, c, 1)
        summary[subject] = {"component_spectrum": spec_sum, "residual_spectrum": res_sum,
                            "n_pairs": counts}
    done = np.isfinite(error)
    keys = np.array([fold.key(int(fl)).id for fl in pfilt], dtype=object)
    record = {
        **(attrs or {}),
        "name": fold.name, "repetition": fold.repetition, "subject": fold.subject,
        "layer": fold.layer, "classes": classes, "bands": bands,
        "categories": list(CATEGORIES), "weightings": list(WEIGHTINGS),
        "measures": list(MEASURES), "input_space": "model" if standardized else "sensor",
        "n_pairs": int(n), "n_skipped": int((~done).sum()),
        "error_max": float(error[done].max()) if done.any() else float("nan"),
        "error_median": float(np.median(error[done])) if done.any() else float("nan"),
    }
    write_netcdf(_fold_dataset(record, (pcls, pfilt, psample, prank), keys, subj,
                               (comp, resid, total, error, comp_band, resid_band, cats),
                               summary, freqs, len(classes), n_max), out_path)
    return record


def _fold_dataset(record: dict[str, Any], pair_ids: tuple[np.ndarray, ...], keys: np.ndarray,
                  subj: np.ndarray, values: tuple[np.ndarray, ...],
                  summary: dict[str, dict[str, np.ndarray]], freqs: np.ndarray,
                  n_classes: int, n_max: int) -> xr.Dataset:
    """The fold file's dataset (layout in the module docstring)."""
    p, k, b = ("pair",), ("component",), ("band",)
    data: dict[str, Any] = {
        name: (p, np.asarray(v, np.int64))
        for name, v in zip(("class", "filter", "sample", "rank"), pair_ids, strict=True)}
    data["key"] = (p, keys.astype(str))
    data["window_subject"] = (p, subj.astype(str))
    comp, resid, total, error, comp_band, resid_band, cats = values
    data.update({"component": (p + k, comp), "residual": (p, resid), "total": (p, total),
                 "error": (p, error), "component_band": (p + k + b, comp_band),
                 "residual_band": (p + b, resid_band),
                 "categories": ((*p, "weighting", "measure", "category"), cats)})
    subjects = sorted(summary)
    cs = np.full((len(subjects), n_classes, n_max, len(freqs)), np.nan)
    rs = np.zeros((len(subjects), n_classes, len(freqs)))
    counts = np.zeros((len(subjects), n_classes), np.int64)
    for i, s in enumerate(subjects):
        spectrum = summary[s]["component_spectrum"]
        cs[i, :, :spectrum.shape[1]] = spectrum
        rs[i], counts[i] = summary[s]["residual_spectrum"], summary[s]["n_pairs"]
    data.update({"component_spectrum": (("summary_subject", "class_index", *k, "freq"), cs),
                 "residual_spectrum": (("summary_subject", "class_index", "freq"), rs),
                 "summary_n_pairs": (("summary_subject", "class_index"), counts)})
    coords = {"freq": np.asarray(freqs, np.float64), "summary_subject": subjects,
              "band": list(record["bands"]), "weighting": list(WEIGHTINGS),
              "measure": list(MEASURES), "category": list(CATEGORIES)}
    return xr.Dataset(data, coords=coords, attrs=record)


# --------------------------------------------------------------------------- readers
def file_attrs(path: str | Path, names: tuple[str, ...]) -> dict[str, Any] | None:
    """Attributes of a fold file; None when it is missing or unreadable (a killed writer's
    leftover: computed again)."""
    return read_attributes(path, names)


def window_subjects(fold: Any) -> list[str]:
    """Subjects whose windows fold ``fold`` selected."""
    samples = fold.samples()
    rows = fold.pairs()["sample"].to_numpy()
    return sorted({str(s) for s in samples["subject"].to_numpy()[rows]})


def unit_table_of(files: list[Path]) -> pd.DataFrame:
    """The unit table of every fold file."""
    parts = []
    for path in files:
        ds = read_netcdf(path)
        cats = ds["categories"].values
        cls = np.asarray(ds.attrs["classes"], object)[ds["class"].values]
        ok = np.isfinite(cats).all(axis=(1, 2, 3))
        categories = {(w, m): cats[ok, i, j] for i, w in enumerate(WEIGHTINGS)
                      for j, m in enumerate(MEASURES)}
        parts.append(unit_table(ds["key"].values.astype(str)[ok], cls[ok],
                                ds["window_subject"].values.astype(str)[ok], categories))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def component_table(files: list[Path], icas: dict[str, Any]) -> pd.DataFrame:
    """Per subject and component: label, probabilities, explained variance, relevance."""
    sums: dict[tuple[str, str], np.ndarray] = {}
    for path in files:
        ds = read_netcdf(path)
        classes = ds.attrs["classes"]
        comp = ds["component"].values
        subject = ds["window_subject"].values.astype(str)
        cls = ds["class"].values
        for s in np.unique(subject):
            for c in np.unique(cls):
                rows = comp[(subject == s) & (cls == c)]
                rows = rows[np.isfinite(rows).any(axis=1)]
                if not len(rows):
                    continue
                vals = np.stack([np.nansum(rows, 0), np.nansum(rows.clip(0), 0),
                                 np.nansum(np.abs(rows), 0)])
                key = (str(s), classes[int(c)])
                sums[key] = sums.get(key, 0) + vals
    out = []
    for subject, ica in icas.items():
        for k in range(ica.n_components):
            row: dict[str, Any] = {"subject": subject, "component": k, "label": ica.labels[k],
                                   "explained_variance": ica.explained_variance[k]}
            row.update({f"p_{name.replace(' ', '_')}": ica.probabilities[k, j]
                        for j, name in enumerate(ICLABEL_CLASSES)})
            for (s, c), vals in sums.items():
                if s == subject:
                    for i, m in enumerate(("signed", "positive", "absolute")):
                        row[f"relevance_{m}/{c}"] = vals[i, k]
            out.append(row)
    return pd.DataFrame(out)


def category_spectra(files: list[Path], icas: Mapping[str, SubjectICA]
                     ) -> tuple[np.ndarray | None, dict[tuple[int, str], np.ndarray]]:
    """Relevance per DFT bin summed over the components of each ICLabel category (and the
    residual), per explained class index: ``(freqs, {(class, category): (F,)})``."""
    spec: dict[tuple[int, str], np.ndarray] = {}
    freqs = None
    for path in files:
        ds = read_netcdf(path)
        freqs = ds["freq"].values
        for i, subject in enumerate(ds["summary_subject"].values.astype(str)):
            if subject not in icas:
                continue
            cs = ds["component_spectrum"].values[i]  # (class, K_max, F)
            rs = ds["residual_spectrum"].values[i]  # (class, F)
            labels = icas[subject].labels
            for c in range(cs.shape[0]):
                for k, lab in enumerate(labels):
                    spec[c, lab] = spec.get((c, lab), 0) + cs[c, k]
                spec[c, "residual"] = spec.get((c, "residual"), 0) + rs[c]
    return freqs, spec

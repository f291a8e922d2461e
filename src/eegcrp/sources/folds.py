"""Component relevance of one explain fold: its selected heatmaps through the ICA layer.

For every selected (class, filter, window) row of an explain fold file the window in volts
is the prepared window of the same subject, trial and onset; the subject's decomposition
(:class:`.ica.SubjectICA`) splits it into component terms and a residual and
:func:`.virtual.ica_relevance` gives each term's relevance, in total and per DFT bin.

Fold file ``sources/folds/<fold>.h5`` (plain h5py):

=====================================  ==============================================
``/`` attributes                        identity, name, repetition, subject, layer,
                                        classes, bands, categories, input_space,
                                        n_pairs, n_skipped (windows of subjects without
                                        ICA), error_max, error_median
``pairs/class, filter, sample, rank``   as in the explain fold file (same row order)
``pairs/key``, ``pairs/subject``        global filter key, subject of the window
``pairs/component`` (P, K)              relevance per component (NaN: padding, or no ICA)
``pairs/residual, total, error`` (P,)   residual term, heatmap total, conservation error
``pairs/component_band`` (P, K, B)      relevance per component and band
``pairs/residual_band`` (P, B)
``pairs/categories`` (P, 2, 3, 8)       weighting x measure x category
                                        (:mod:`.shares`, :data:`.ica.CATEGORIES`)
``summary/<subject>/...``               per window subject: ``component_spectrum``
                                        (class, K, F) and ``residual_spectrum`` (class,
                                        F) summed over its rows, ``n_pairs`` (class,)
``coords/freqs``                        DFT bin frequencies (Hz)
=====================================  ==============================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import mne
import numpy as np

from ..io import atomic_path
from ..relevance.spectral import band_sum
from ..store import FoldRelevance
from .ica import CATEGORIES, SourcesError, SubjectICA
from .shares import MEASURES, WEIGHTINGS, category_relevance
from .virtual import ica_relevance

__all__ = ["fold_sources", "window_lookup"]

_STR = h5py.string_dtype()


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
    with fold.open() as f:
        pcls, pfilt, psample = (f["pairs"][k][()] for k in ("class", "filter", "sample"))
        prank = f["pairs/rank"][()] if "rank" in f["pairs"] else np.zeros(len(psample), int)
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
            with fold.open() as f:  # part is increasing, as h5py's row selection needs
                heat = f["pairs/heatmaps"][part]
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
    with atomic_path(out_path, ".h5") as tmp, h5py.File(tmp, "w") as f:
        for key, value in record.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        g = f.create_group("pairs")
        for name, value in (("class", pcls), ("filter", pfilt), ("sample", psample),
                            ("rank", prank), ("component", comp), ("residual", resid),
                            ("total", total), ("error", error), ("component_band", comp_band),
                            ("residual_band", resid_band), ("categories", cats)):
            g.create_dataset(name, data=value)
        g.create_dataset("key", data=keys.astype(str).astype(object), dtype=_STR)
        g.create_dataset("subject", data=subj.astype(object), dtype=_STR)
        for subject, arrays in summary.items():
            sg = f.create_group(f"summary/{subject}")
            for name, value in arrays.items():
                sg.create_dataset(name, data=value)
        f.create_dataset("coords/freqs", data=freqs)
    return record

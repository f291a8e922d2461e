"""CRP of one fold model, streamed to one HDF5 fold file (:class:`eegcrp.store.FoldWriter`).

Three phases, so that nothing the size of a dataset's heatmaps is ever computed or held:

1. one forward pass, then per class one backward pass from the output down to the concept
   layer only gives every filter's relevance for every candidate window;
2. relevance maximisation (:func:`eegcrp.relevance.crp.select_samples`) picks each filter's
   windows per class;
3. only the selected (window, class, filter) conditions get input heatmaps, in batches of
   ``batch_size`` conditions, written chunk by chunk with their DFT relevance.

Because LRP is linear in the relevance entering a layer and the rows of a batch do not
interact (eval mode), this gives the same numbers as computing every heatmap of every window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eegcrp.config import ExplainConfig
from eegcrp.errors import ExplainError
from eegcrp.store import FoldWriter

from .alignment import SensorLayer
from .crp import ConceptExplainer, select_samples
from .spectral import dft_relevance, rfft_freqs, spectrum, stdft_relevance

__all__ = ["FoldData", "explain_fold"]


@dataclass
class FoldData:
    """The windows a fold's explanations are drawn from.

    Attributes
    ----------
    x : ndarray, shape (n, n_channels, n_times)
        Model input (normalised the way the model was trained).
    y : ndarray of int, shape (n,)
        True class index.
    subject : ndarray of str, shape (n,)
    trial : ndarray of int, shape (n,)
        Trial id within the subject (-1 where unknown).
    onset : ndarray of float, shape (n,)
        Seconds from the trial start to the window's first sample (NaN where unknown).
    sensor : SensorLayer | None
        For aligned models: the sensor-space windows and the map to ``x``; heatmaps,
        spectra and DFT relevance are then stored in sensor space
        (:mod:`eegcrp.relevance.alignment`).
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    trial: np.ndarray
    onset: np.ndarray
    sensor: SensorLayer | None = None

    def __post_init__(self) -> None:
        n = len(self.x)
        for name in ("y", "subject", "trial", "onset"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"FoldData.{name} has {len(getattr(self, name))} rows, x {n}")


def explain_fold(
    model: nn.Module,
    data: FoldData,
    config: ExplainConfig,
    out_path: str | Path,
    *,
    classes: list[str],
    sfreq: float,
    device: torch.device | str = "cpu",
    attrs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CRP of one fold model, written atomically to one HDF5 file.

    Parameters
    ----------
    model : nn.Module
        The trained fold model (eval mode).
    data : FoldData
        Candidate windows (see :class:`FoldData`).
    config : ExplainConfig
        Layer, composite, init, selection, bands ...
    out_path : str | Path
        The fold file.
    classes : list of str
        Class names (model output order).
    sfreq : float
        Sampling rate of the windows in Hz.
    device : torch.device | str
        Where to compute.
    attrs : dict | None
        Extra metadata stored in the file (fold identity, channel positions ...).

    Returns
    -------
    dict
        The file's attributes (settings, counts, conservation) plus where and how long it
        ran (``device``, ``threads``, ``wall_time_s``; not stored in the file).
    """
    start_time = time.perf_counter()
    x = data.x
    if len(x) == 0:
        raise ExplainError(f"{Path(out_path).name}: no candidate windows; explain with the "
                           "dataset the model was trained on")
    bounds = (float(x.min()), float(x.max()))
    explainer = ConceptExplainer(
        model, config.layer, config.composite, config.first_layer_rule, config.zero_bias,
        input_bounds=bounds, init=config.init, device=device,
    )
    n_classes = len(classes)
    with explainer:
        logits, start, totals = _phase1(explainer, x, n_classes, config.batch_size)
        pred = logits.argmax(1)
        selection = _select(totals, data.y, pred, config)
        out = {
            **(attrs or {}),
            "layer": config.layer,
            "n_filters": explainer.n_filters,
            "composite": config.composite,
            "first_layer_rule": config.first_layer_rule or "",
            "zero_bias": bool(config.zero_bias),
            "init": config.init,
            "selection": config.selection,
            "share": float(config.share),
            "top_k": int(config.top_k),
            "rank_by": config.rank_by,
            "select_from": config.select_from,
            "by_class": bool(config.by_class),
            "correctness": config.correctness,
            "classes": list(classes),
            "sfreq": float(sfreq),
            "n_times": int(x.shape[-1]),
            "bands": {k: list(v) for k, v in config.bands.items()},
            "short_time": bool(config.short_time),
            "input_space": "sensor" if data.sensor is not None else "model",
            "input_bounds": list(bounds),
            "n_samples": len(x),
            "n_pairs": len(selection.sample),
        }
        with FoldWriter(out_path) as writer:
            writer.write_samples(subject=data.subject, trial=data.trial, onset=data.onset,
                                 y=data.y, pred=pred, logits=logits, filter_relevance=totals)
            heat_total = _phase3(explainer, x, selection, totals, config, out, writer,
                                 data.sensor)
            # Conservation: start -> layer (every window and class), and layer -> input
            # (each selected heatmap against its filter's relevance).
            layer_total = totals.sum(-1).astype(np.float64)  # (n_classes, n)
            pair_rel = totals[selection.cls, selection.sample, selection.filt].astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = heat_total / pair_rel
                flagged = ~(np.abs(ratio - 1) <= config.conservation_tolerance)
                writer.write_pair_values({"conservation": ratio, "flagged": flagged})
                out.update(
                    conservation_tolerance=float(config.conservation_tolerance),
                    n_flagged=int(flagged.sum()),
                    conservation_upper=_rel_error(layer_total, start),
                    conservation_lower=_rel_error(heat_total, pair_rel),
                    layer_over_logit=_quantiles(layer_total / start),
                    input_over_layer=_quantiles(heat_total / pair_rel),
                )
            writer.write_attrs(out)
    # how and how long it ran is returned, never stored: the file holds results only
    return {**out, "device": str(explainer.device), "threads": torch.get_num_threads(),
            "wall_time_s": round(time.perf_counter() - start_time, 3)}


def _candidates(y: np.ndarray, pred: np.ndarray, cls: int, config: ExplainConfig) -> np.ndarray:
    """Windows that may be selected for class ``cls`` (true class, correctness)."""
    mask = (y == cls) if config.by_class else np.ones(len(y), bool)
    if config.correctness == "correct":
        mask &= pred == y
    elif config.correctness == "incorrect":
        mask &= pred != y
    return mask


def _phase1(
    explainer: ConceptExplainer, x: np.ndarray, n_classes: int, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits of the model, the relevance each class's propagation starts with (n_classes,
    n) and every filter's total relevance per class (n_classes, n, n_filters): one backward
    pass per class down to the layer."""
    n = len(x)
    logits = np.zeros((n, n_classes), np.float32)
    start = np.zeros((n_classes, n), np.float64)
    totals = np.zeros((n_classes, n, explainer.n_filters), np.float32)
    for s in range(0, n, batch):
        xb = x[s : s + batch]
        logits[s : s + batch] = explainer.predict(xb)[0].cpu().numpy()
        lr = explainer.layer_relevance(xb)
        start[:, s : s + batch] = lr.start.double().cpu().numpy()
        totals[:, s : s + batch] = lr.relevance.flatten(3).sum(-1).cpu().numpy()
    return logits, start, totals


@dataclass
class _Selection:
    """Phase 2: selected (class, filter, window) rows, sorted by class, filter and rank."""

    cls: np.ndarray
    filt: np.ndarray
    sample: np.ndarray
    rank: np.ndarray
    counts: np.ndarray  # (n_classes, n_filters)
    candidates: np.ndarray  # (n_classes, n) bool
    share: np.ndarray  # (n_classes, n_filters): share of the relevance the selection holds

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts.ravel())]).astype(np.int64)


def _select(totals: np.ndarray, y: np.ndarray, pred: np.ndarray,
            config: ExplainConfig) -> _Selection:
    n_classes, _, n_filters = totals.shape
    top_k = config.top_k if config.selection == "top_k" else None
    parts: list[tuple[int, int, np.ndarray]] = []
    share = np.zeros((n_classes, n_filters))
    candidates = np.stack([_candidates(y, pred, c, config) for c in range(n_classes)])
    for c in range(n_classes):
        for f in range(n_filters):
            r = totals[c, :, f].astype(np.float64)
            sel = select_samples(r, share=config.share, top_k=top_k, rank_by=config.rank_by,
                                 candidates=candidates[c])
            parts.append((c, f, sel))
            pool = r[candidates[c]]
            total = np.abs(pool).sum() if config.rank_by == "abs" else pool.clip(0).sum()
            share[c, f] = np.abs(r[sel]).sum() / total if total > 0 else 0.0
    return _Selection(
        cls=np.concatenate([np.full(len(sel), c) for c, _, sel in parts]).astype(np.int64),
        filt=np.concatenate([np.full(len(sel), f) for _, f, sel in parts]).astype(np.int64),
        sample=np.concatenate([sel for _, _, sel in parts]).astype(np.int64),
        rank=np.concatenate([np.arange(len(sel)) for _, _, sel in parts]).astype(np.int64),
        counts=np.array([len(sel) for _, _, sel in parts], np.int64).reshape(n_classes,
                                                                             n_filters),
        candidates=candidates,
        share=share,
    )


def _quantiles(values: np.ndarray) -> list[float]:
    """5th percentile, median and 95th percentile (NaN-free; empty -> NaNs)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan")] * 3
    return [float(v) for v in np.percentile(values, [5, 50, 95])]


def _phase3(
    explainer: ConceptExplainer,
    x: np.ndarray,
    sel: _Selection,
    totals: np.ndarray,
    config: ExplainConfig,
    attrs: dict[str, Any],
    writer: Any,
    sensor: SensorLayer | None = None,
) -> np.ndarray:
    """Conditional heatmaps of the selected windows, their DFT relevance and the summaries,
    streamed to ``writer`` chunk by chunk; returns each heatmap's total."""
    n_classes, _, n_filters = totals.shape
    n_pairs, n_channels, n_times = len(sel.sample), x.shape[1], x.shape[2]
    sfreq = float(attrs["sfreq"])
    freqs = rfft_freqs(n_times, sfreq)
    tf = None
    if config.short_time:
        _, _, tf_times, tf_freqs = stdft_relevance(np.zeros(n_times), np.zeros(n_times), sfreq,
                                                   config.short_time_window)
        tf = (tf_times, tf_freqs)
    n_layer_time = int(explainer.predict(x[:1])[1].shape[-1])
    writer.write_pairs(sel.cls, sel.filt, sel.sample, sel.rank,
                       totals[sel.cls, sel.sample, sel.filt])
    writer.create_pair_arrays(n_pairs, n_channels=n_channels, n_times=n_times,
                              n_bins=len(freqs), n_time_layer=n_layer_time,
                              tf_shape=None if tf is None else (len(tf[0]), len(tf[1])))
    grid = (n_classes, n_filters)
    sums = {
        "activation_mean": np.zeros((*grid, n_layer_time)),
        "relevance_mean": np.zeros((*grid, n_layer_time)),
        "heatmap_mean": np.zeros((*grid, n_channels, n_times)),
        "spectral_relevance_sum": np.zeros((*grid, n_channels, len(freqs))),
        "spectrum_mean": np.zeros((*grid, n_channels, len(freqs))),
        "power_mean": np.zeros((*grid, n_channels, len(freqs))),
    }
    if tf is not None:
        sums["tf_relevance_sum"] = np.zeros((*grid, n_channels, len(tf[0]), len(tf[1])))
    heat_total = np.zeros(n_pairs)
    for s in range(0, n_pairs, config.batch_size):
        rows = slice(s, min(s + config.batch_size, n_pairs))
        pc, pf, ps = sel.cls[rows], sel.filt[rows], sel.sample[rows]
        xb = x[ps]
        att = explainer.attribute(xb, pc, pf)
        act = explainer.predict(xb)[1]
        dev = att.heatmap.device
        index = (torch.arange(len(ps), device=dev), torch.as_tensor(pf, device=dev))
        # the filter's map (channels-or-1 x time at the layer): relevance summed, activation
        # averaged over the non-time axis (a singleton for the layers of block 2)
        rel_tc = att.layer_relevance[index].flatten(1, -2).sum(1).cpu().numpy()
        act_tc = act[index].flatten(1, -2).mean(1).cpu().numpy()
        heat = att.heatmap.cpu().numpy()
        if sensor is not None:  # aligned model: relevance of the sensor-space windows
            xb, heat = sensor.to_sensor(ps, xb, heat)
        chunk = {
            "heatmaps": heat,
            "spectral_relevance": dft_relevance(xb, heat),
            "spectra": spectrum(xb),
            "relevance_time": rel_tc,
            "activation_time": act_tc,
        }
        if tf is not None:
            chunk["tf_relevance"], chunk["tf_spectra"], _, _ = stdft_relevance(
                xb, heat, sfreq, config.short_time_window
            )
        heat_total[rows] = heat.astype(np.float64).sum((1, 2))
        chunk["heatmap_total"] = heat_total[rows]
        writer.write_pair_chunk(rows, chunk)
        parts = {"activation_mean": act_tc, "relevance_mean": rel_tc, "heatmap_mean": heat,
                 "spectral_relevance_sum": chunk["spectral_relevance"],
                 "spectrum_mean": chunk["spectra"], "power_mean": chunk["spectra"] ** 2}
        if tf is not None:
            parts["tf_relevance_sum"] = chunk["tf_relevance"]
        # rows are sorted by (class, filter): add up each contiguous run
        key = pc * n_filters + pf
        breaks = np.flatnonzero(np.diff(key)) + 1
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(key)], strict=True):
            for name, values in parts.items():
                sums[name][pc[a], pf[a]] += values[a:b].sum(0)
    divisor = np.where(sel.counts > 0, sel.counts, np.nan)
    for name in ("activation_mean", "relevance_mean", "heatmap_mean", "spectrum_mean",
                 "power_mean"):
        sums[name] /= divisor.reshape(*grid, *([1] * (sums[name].ndim - 2)))
    pool = [totals[c][sel.candidates[c]] for c in range(n_classes)]
    summary = {
        "n_selected": sel.counts,
        "offsets": sel.offsets,
        "n_candidates": sel.candidates.sum(1).astype(np.int64),
        "total_relevance": np.stack([p.sum(0) for p in pool]),
        "total_abs_relevance": np.stack([np.abs(p).sum(0) for p in pool]),
        "selected_share": sel.share,
        **sums,
    }
    writer.write_summary(summary, freqs=freqs, tf=tf)
    return heat_total


def _rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """Summed absolute deviation relative to the summed magnitude (0 for no data)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = np.abs(want).sum()
    return float(np.abs(got - want).sum() / scale) if scale > 0 else 0.0

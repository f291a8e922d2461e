"""Concept-level quality: do the concept clusters (pipeline B) carry what their relevance says?

* **Ablation.** Removing a cluster's filters from a fold model (their outputs at the concept
  layer set to zero, the bias-free part that LRP with biases left out distributes) should
  lower the class score by about the cluster's share of the filters' relevance. Per fold,
  class and pooled cluster: the cluster's signed relevance share (its filters' summed
  relevance over the class's candidate windows, divided by the summed absolute relevance of
  every filter) and the mean score drop on the fold's held-out windows of the class; the
  stage reports their correlation over all (fold, class, cluster).
* **Ground truth** (simulated data): per pooled cluster, the share of its positive
  relevance in the planted bands that lies on the planted channels, next to the share
  expected by channel count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .attribution import decision_score
from .ground_truth import planted

__all__ = ["ablation_rows", "cluster_ground_truth", "cluster_members"]


def cluster_members(filters: Any, fold: str) -> dict[str, dict[str, list[int]]]:
    """Class -> pooled cluster -> filter indices of ``fold`` (noise and excluded left out)."""
    rows = filters[(filters["fold"] == fold)
                   & ~filters["cluster_pooled"].isin(["NC", "excluded"])]
    out: dict[str, dict[str, list[int]]] = {}
    for (cls, cluster), group in rows.groupby(["class", "cluster_pooled"]):
        out.setdefault(str(cls), {})[str(cluster)] = sorted(int(f) for f in group["filter"])
    return out


def _ablated_scores(model: nn.Module, layer: str, filters: Sequence[int], x: np.ndarray,
                    y: np.ndarray, init: str) -> np.ndarray:

    module = dict(model.named_modules())[layer]
    index = torch.as_tensor(list(filters), dtype=torch.long)

    def zero(mod: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[:, index] = 0
        return output

    handle = module.register_forward_hook(zero)
    try:
        return decision_score(model, x, y, init)
    finally:
        handle.remove()


def ablation_rows(model: nn.Module, x: np.ndarray, y: np.ndarray, classes: list[str],
                  members: Mapping[str, Mapping[str, list[int]]], total_relevance: np.ndarray,
                  *, layer: str, init: str, fold: str) -> list[dict[str, Any]]:
    """Score drop and relevance share of every pooled cluster of one fold (see above).

    Parameters
    ----------
    total_relevance : ndarray, shape (n_classes, n_filters)
        Each filter's summed relevance over the class's candidate windows (explain store).
    """

    rows = []
    for c, name in enumerate(classes):
        keep = y == c
        if not keep.any() or name not in members:
            continue
        base = decision_score(model, x[keep], y[keep], init)
        denom = float(np.abs(total_relevance[c]).sum())
        for cluster, filt in members[name].items():
            ablated = _ablated_scores(model, layer, filt, x[keep], y[keep], init)
            rows.append({
                "fold": fold, "class": name, "cluster": cluster, "n_filters": len(filt),
                "relevance_share": float(total_relevance[c, filt].sum() / denom)
                if denom > 0 else float("nan"),
                "score": float(base.mean()),
                "score_drop": float((base - ablated).mean()),
                "relative_drop": float((base - ablated).mean() / np.abs(base).mean())
                if np.abs(base).mean() > 0 else float("nan"),
            })
    return rows


def cluster_ground_truth(arrays: Any, clusters: Any, truth: Mapping[str, Any]
                         ) -> list[dict[str, Any]]:
    """Planted-channel share of each pooled cluster's positive relevance in the planted bands.

    ``arrays`` is the concepts stage's :class:`xarray.Dataset` (``relevance_band`` with
    ``band_low``/``band_high``), ``clusters`` its cluster table.
    """

    target = planted(truth)
    rel = arrays["relevance_band"]
    low, high = arrays["band_low"].values, arrays["band_high"].values
    in_band = np.array([any(lo < hi_t and hi > lo_t for lo_t, hi_t in target["bands"])
                        for lo, hi in zip(low, high, strict=True)])
    channels = [str(c) for c in rel["channel"].values]
    is_planted = np.array([c in target["channels"] for c in channels])
    pooled = clusters[(clusters["scope"] == "pooled") & (clusters["label"] >= 0)]
    rows = []
    for _, row in pooled.iterrows():
        values = np.clip(rel.sel(cluster=row["cluster_id"]).values, 0, None)[:, in_band]
        total = values.sum()
        rows.append({
            "class": row["class"], "cluster": str(row["cluster"]),
            "stable": row.get("stable"), "shared": row.get("shared"),
            "n_models": row.get("n_models"),
            "planted_channel_share": float(values[is_planted].sum() / total)
            if total > 0 else float("nan"),
            "channel_chance": float(is_planted.mean()),
        })
    return rows

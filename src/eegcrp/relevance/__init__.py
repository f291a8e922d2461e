"""Relevance: LRP rules and composites (:mod:`.rules`), the CRP core (:mod:`.crp`), the
DFT virtual inspection layer (:mod:`.spectral`) and the per-fold computation (:mod:`.fold`)."""

from __future__ import annotations

import importlib
from typing import Any

# Names load on first use: the spectral helpers (numpy only) serve readers of results that
# need neither torch nor zennit.
_EXPORTS = {
    "INITS": "crp", "Attribution": "crp", "ConceptExplainer": "crp",
    "LayerRelevance": "crp", "select_samples": "crp",
    "COMPOSITES": "rules", "RULES": "rules", "build_composite": "rules",
    "make_rule": "rules", "without_bias": "rules",
    "band_mean": "spectral", "band_sum": "spectral", "dft_relevance": "spectral",
    "rfft_freqs": "spectral", "spectrum": "spectral", "stdft_relevance": "spectral",
}

__all__ = [
    "COMPOSITES",
    "INITS",
    "RULES",
    "Attribution",
    "ConceptExplainer",
    "LayerRelevance",
    "band_mean",
    "band_sum",
    "build_composite",
    "dft_relevance",
    "make_rule",
    "rfft_freqs",
    "select_samples",
    "spectrum",
    "stdft_relevance",
    "without_bias",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

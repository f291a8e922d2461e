"""Relevance: LRP rules and composites (:mod:`.rules`), the CRP core (:mod:`.crp`), the
DFT virtual inspection layer (:mod:`.spectral`) and the per-fold computation (:mod:`.fold`)."""

from .crp import INITS, Attribution, ConceptExplainer, LayerRelevance, select_samples
from .rules import COMPOSITES, RULES, build_composite, make_rule, without_bias
from .spectral import band_mean, band_sum, dft_relevance, rfft_freqs, spectrum, stdft_relevance

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

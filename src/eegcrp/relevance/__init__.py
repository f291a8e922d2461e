"""Relevance: LRP rules and composites (:mod:`.rules`), the CRP core (:mod:`.crp`), the
DFT virtual inspection layer (:mod:`.spectral`) and the per-fold computation (:mod:`.fold`)."""

from ..errors import MissingDependencyError

try:
    import zennit  # noqa: F401
except ImportError as exc:  # pyproject cannot declare it: see constraints.txt
    raise MissingDependencyError(
        "explanations need zennit 0.4.6, which `pip install eegcrp` does not install (it "
        "declares torchvision, which it never imports and whose builds for this torch fail "
        "to import): run `pip install --no-deps zennit==0.4.6` (make demo and make test "
        "do this)") from exc

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

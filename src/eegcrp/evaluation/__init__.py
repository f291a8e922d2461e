"""Explanation quality: faithfulness (:mod:`.perturbation`), attribution baselines
(:mod:`.attribution`), randomisation checks (:mod:`.randomisation`) and ground-truth
recovery on simulated data (:mod:`.ground_truth`); the ``evaluate`` stage runs them."""

from .attribution import METHODS, attribute, decision_score, method_names, output_weights
from .ground_truth import planted, recovery_scores
from .perturbation import DOMAINS, Domain, aopc, make_domain, perturbation_curves, steps_for
from .randomisation import CASCADE, cascade_models, cascade_similarity, similarity

__all__ = [
    "CASCADE",
    "DOMAINS",
    "METHODS",
    "Domain",
    "aopc",
    "attribute",
    "cascade_models",
    "cascade_similarity",
    "decision_score",
    "make_domain",
    "method_names",
    "output_weights",
    "perturbation_curves",
    "planted",
    "recovery_scores",
    "similarity",
    "steps_for",
]

"""Each enumeration is defined once; where a config literal must stay literal (pydantic,
the JSON schema), it is checked against the implementation it names."""

from __future__ import annotations

from typing import get_args

from eegcrp.config import (
    _KIND_TAGS,
    EvaluateConfig,
    ExplainConfig,
    TrainingConfig,
)
from eegcrp.config.evaluate import EVALUATE_COMPOSITES
from eegcrp.data.registry import LOADERS


def _literal(model, field: str) -> set:
    annotation = model.model_fields[field].annotation
    values = set()
    stack = [annotation]
    while stack:  # unwrap list[...], X | None, Literal[...]
        item = stack.pop()
        args = get_args(item)
        if not args:
            if item is not type(None):
                values.add(item)
            continue
        if type(args[0]) is str:
            values |= set(args)
        else:
            stack.extend(args)
    return values


def test_dataset_kinds_agree_with_the_loaders():
    assert set(LOADERS) == _KIND_TAGS


def test_relevance_settings_agree_with_the_implementation():
    from eegcrp.relevance.crp import INITS
    from eegcrp.relevance.rules import COMPOSITES, RULES

    assert _literal(ExplainConfig, "init") == set(INITS)
    assert _literal(ExplainConfig, "first_layer_rule") == set(RULES)
    assert _literal(ExplainConfig, "composite") <= set(COMPOSITES)
    assert set(EVALUATE_COMPOSITES) <= set(COMPOSITES)


def test_training_and_evaluation_settings_agree_with_the_implementation():
    from eegcrp.evaluation.attribution import METHODS
    from eegcrp.training.alignment import ALIGNMENTS

    assert _literal(TrainingConfig, "alignment") == set(ALIGNMENTS)
    assert _literal(EvaluateConfig, "baselines") == set(METHODS)


def test_relevance_measures_are_one_tuple():
    from eegcrp import stats
    from eegcrp.regions import cells
    from eegcrp.sources import shares

    assert cells.MEASURES is shares.MEASURES is stats.MEASURES


def test_control_kinds_agree_with_the_controls_and_their_family_defaults():
    from eegcrp.config import ControlsConfig, PreprocessingConfig
    from eegcrp.config.controls import CONTROL_KINDS
    from eegcrp.config.data import TASK_FAMILIES
    from eegcrp.controls import FAMILY_BANDS, FAMILY_CONTROLS
    from eegcrp.data import TASKS

    assert _literal(ControlsConfig, "run") == set(CONTROL_KINDS)
    assert set().union(*FAMILY_CONTROLS.values()) == set(CONTROL_KINDS)
    assert set(FAMILY_CONTROLS) == set(TASK_FAMILIES) == set(TASKS) == set(FAMILY_BANDS)
    assert {"min_window_onset", "drop_channels"} <= set(PreprocessingConfig.model_fields)

"""Which trained folds the evaluate stage checks."""

from __future__ import annotations

from eegcrp.config import EvaluateConfig
from eegcrp.stages.evaluate import folds_to_evaluate

RECORDS = [{"name": f"rep{r:02d}_sub-{s}", "repetition": r} for r in range(3)
           for s in ("a", "b", "c")]


def _names(**kwargs) -> list[str]:
    return [f["name"] for f in folds_to_evaluate(RECORDS, EvaluateConfig(**kwargs))]


def test_default_is_every_subject_of_the_first_repetition() -> None:
    assert _names() == ["rep00_sub-a", "rep00_sub-b", "rep00_sub-c"]


def test_repetitions_and_max_folds_combine_in_order() -> None:
    assert _names(repetitions=2) == [f["name"] for f in RECORDS[:6]]
    assert _names(repetitions=None) == [f["name"] for f in RECORDS]
    assert _names(repetitions=2, max_folds=4) == [f["name"] for f in RECORDS[:4]]
    assert _names(repetitions=None, max_folds=1) == ["rep00_sub-a"]

"""The pipeline's stages, registered once in pipeline order (see :mod:`.registry`).

=========  ==========  ==========================================  =====================
stage      folder      reads                                       writes
=========  ==========  ==========================================  =====================
prepare    prepare/    the recordings (cached per subject)          summary.csv, manifest
train      training/   prepare                                      folds/*.pt|json, metrics
decoding   decoding/   prepare, train                               scores.csv, predictions
explain    explain/    prepare, train                               folds/*.h5
concepts   concepts/   explain                                      filters.csv, clusters
sources    sources/    prepare, explain, concepts                   ica/, folds/, shares
regions    regions/    explain                                      cells.csv, layout
evaluate   evaluate/   prepare, train, explain, concepts            aopc.csv, curves.csv ...
controls   controls/   prepare, train (retrains under each control)  summary.csv, <control>/
report     report/     every stage present                          ../report.html
=========  ==========  ==========================================  =====================
"""

# isort: off
# Importing a stage module registers the stage: this order is the pipeline's order.
from . import prepare  # noqa: F401
from . import train  # noqa: F401
from . import decoding  # noqa: F401
from . import explain  # noqa: F401
from . import concepts  # noqa: F401
from . import sources  # noqa: F401
from . import regions  # noqa: F401
from . import evaluate  # noqa: F401
from . import controls  # noqa: F401
from . import report  # noqa: F401
# isort: on
from .manifest import MANIFEST_NAME, Manifest
from .registry import STAGES, Stage, StageContext, expected_identity, require, run_stage

__all__ = [
    "MANIFEST_NAME",
    "STAGES",
    "Manifest",
    "Stage",
    "StageContext",
    "expected_identity",
    "require",
    "run_all",
    "run_stage",
]


def run_all(config, *, progress: bool = True, overwrite: bool = False,
            replace_other: bool = False):
    """Run every registered stage in order (the report last); returns the report's path."""
    result = None
    for name in STAGES:
        result = run_stage(name, config, progress=progress, overwrite=overwrite,
                           replace_other=replace_other)
    return result

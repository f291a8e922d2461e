"""Stage ``concepts``: filters of every fold model clustered into concepts shared across
subjects (see :mod:`eegcrp.concepts`).

It reads only the explain store that the verified explain manifest lists
(:func:`eegcrp.store.open_relevance`), never the dataset, and writes ``filters.csv``,
``clusters.csv``, ``stability.csv``, ``agreement.csv`` and ``clusters.nc`` atomically, each
recorded in the manifest, whose ``extra`` holds the settings used (seed, resolved
``n_neighbors`` and ``min_cluster_size``) and a per-class summary. A re-run with the same
identity whose products are intact reuses them; the analysis is deterministic for a given
config and seed.
"""

from __future__ import annotations

import logging
from typing import Any

from ..config.concepts import REPORT_ONLY_FIELDS
from .registry import Stage, StageContext, register

logger = logging.getLogger(__name__)

__all__: list[str] = []


def _run(ctx: StageContext) -> dict[str, Any]:
    from ..concepts import analysis_variables, compute_concepts, write_concepts
    from ..concepts.results import PRODUCTS
    from ..store import open_relevance

    cc = ctx.config.concepts
    previous = ctx.previous
    if (previous is not None and previous.complete and previous.inputs == ctx.manifest.inputs
            and set(PRODUCTS) <= set(previous.products)
            and not previous.check_products(ctx.folder)):
        ctx.manifest.products = dict(previous.products)
        ctx.manifest.extra = dict(previous.extra)
        logger.info("concepts: results up to date in %s", ctx.folder)
        return {"reused": True, **previous.extra.get("summary", {})}
    run = open_relevance(ctx.config.output_dir)
    ds = run.to_dataset(analysis_variables(cc))
    result = compute_concepts(ds, cc, layer=run.layer, run=run, seed=cc.seed)
    for relative in write_concepts(result, ctx.folder):
        ctx.manifest.add_product(ctx.folder, relative)
    ctx.manifest.extra = {"summary": result.summary, "layer": run.layer,
                          "descriptor": list(cc.descriptor), "seed": cc.seed,
                          "folds": len(run.folds)}
    return {"reused": False, **result.summary}


def _report(report: Any, ctx: Any) -> None:
    from ..report.concepts_section import add_concepts_section

    add_concepts_section(report, ctx)


def _describe(result: dict[str, Any], config: Any) -> str:
    parts = []
    for cls, s in result.get("classes", {}).items():
        stable = "stability not assessable" if s["stable"] is None else f"{s['stable']} stable"
        parts.append(f"{cls}: {s['clusters']} clusters ({stable}, {s['shared']} shared)")
    verb = "up to date" if result.get("reused") else "clustered"
    return (f"concepts {verb}: {'; '.join(parts)}; results in {config.output_dir}/concepts")


STAGE = register(Stage(
    name="concepts",
    help="cluster every filter of every fold model into concepts shared across subjects",
    folder="concepts",
    sections=("concepts",),
    ignore={"concepts": REPORT_ONLY_FIELDS},
    requires=("explain",),
    run=_run,
    report=_report,
    describe=_describe,
))

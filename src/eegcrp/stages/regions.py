"""Stage ``regions``: relevance per scalp region x band per class, tested across subjects.

Reads the explain store only: the channels with positions (regions from
:func:`eegcrp.regions.make_layout`; bipolar channels are refused with the fix), the dataset's
task (for the thesis' preset) and every fold's selected DFT relevance. Writes
``layout.json``, ``channel_band.nc``, ``subject_cells.csv``, ``cells.csv`` and
``class_difference.csv`` (layout
and reader: :mod:`eegcrp.regions`); the manifest's ``extra`` holds the layout summary and
the significant cells per class.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from ..io import write_json_atomic
from .registry import Stage, StageContext, register, require, stage_folder

logger = logging.getLogger(__name__)

__all__: list[str] = []


def _significant(cells: pd.DataFrame, measure: str = "positive") -> dict[str, list[dict]]:
    """Per class, the significant cells of one measure, largest excess first."""
    out: dict[str, list[dict]] = {}
    part = cells[(cells["measure"] == measure) & cells["significant"]]
    for cls, rows in part.groupby("class"):
        rows = rows.sort_values("excess", ascending=False)
        out[str(cls)] = [{"region": r["region"], "band": r["band"],
                          "excess": round(float(r["excess"]), 4),
                          "ratio": round(float(r["ratio"]), 3), "dz": round(float(r["dz"]), 2),
                          "p_fdr": float(r["p_fdr"])} for _, r in rows.iterrows()]
    return out


def _min_p(n: int, rc: Any) -> float:
    """The smallest p-value the test can give with ``n`` subjects (all signs alike)."""
    from ..regions.stats import EXACT_MAX

    if n < 2:
        return float("nan")
    if rc.test == "wilcoxon" or n <= EXACT_MAX:
        return min(1.0, 2.0 / 2**n)
    return 1.0 / (1 + rc.n_permutations)


def _run(ctx: StageContext) -> dict[str, Any]:
    from ..regions import cell_table, channel_band, class_difference, make_layout
    from ..regions.cells import subject_table
    from ..store import open_relevance

    config = ctx.config
    rc = config.regions
    if not rc.enabled:
        ctx.manifest.extra = {"skipped": "regions.enabled is false"}
        return {"skipped": True}
    start = time.perf_counter()
    run = open_relevance(stage_folder(config, "explain"))
    task = require("prepare", config, hashes=False).extra["dataset"].get("task")
    layout = make_layout(rc.layout, run.channels, task, rc.min_channels)
    for what, names in (("regions without channels", layout.empty),
                        (f"regions with fewer than {rc.min_channels} channels", layout.small),
                        ("channels in no region", layout.unassigned)):
        if names:
            logger.warning("regions (%s layout): %s: %s", layout.name, what, names)
    if layout.missing:
        logger.warning("regions: preset channels missing from the data: %s", layout.missing)
    write_json_atomic(ctx.folder / "layout.json", layout.to_dict())
    ctx.manifest.add_product(ctx.folder, "layout.json")
    bands = run.bands
    cb = channel_band(run, bands)
    cb.save(ctx.folder / "channel_band.nc")
    ctx.manifest.add_product(ctx.folder, "channel_band.nc")
    kwargs = {"test": rc.test, "n_permutations": rc.n_permutations, "alpha": rc.alpha,
              "seed": int(rc.seed or 0)}
    cells = cell_table(cb, layout, **kwargs)
    diff = class_difference(cb, layout, **kwargs)
    for frame, name in ((cells, "cells.csv"), (diff, "class_difference.csv"),
                        (subject_table(cb, layout), "subject_cells.csv")):
        ctx.write_csv(frame, name)
    sig_diff = diff[(diff["measure"] == "positive") & diff["significant"]]
    ctx.manifest.extra = {
        "layout": {"name": layout.name, "regions": {k: len(v) for k, v in
                                                    layout.regions.items()},
                   "empty": layout.empty, "small": layout.small, "merged": layout.merged,
                   "unassigned": layout.unassigned, "missing": layout.missing},
        "subjects": cb.subjects, "bands": {k: list(v) for k, v in bands.items()},
        "test": rc.test, "alpha": rc.alpha, "min_p": _min_p(len(cb.subjects), rc),
        "significant": {m: _significant(cells, m) for m in ("positive", "absolute",
                                                            "signed")},
        "class_difference": [{k: r[k] for k in ("class_a", "class_b", "region", "band",
                                                 "difference", "p_fdr")}
                             for _, r in sig_diff.iterrows()],
        "wall_time_s": round(time.perf_counter() - start, 3),
    }
    return {"layout": layout.name, "n_regions": len(layout.regions),
            "significant": ctx.manifest.extra["significant"]["positive"]}


def _load(ctx: StageContext) -> dict[str, Any]:
    """The result of an up-to-date regions stage, from its manifest (nothing recomputed)."""
    extra = ctx.manifest.extra
    if extra.get("skipped"):
        return {"skipped": True}
    return {"layout": extra["layout"]["name"], "n_regions": len(extra["layout"]["regions"]),
            "significant": extra["significant"]["positive"]}


def _report(report: Any, ctx: Any) -> None:
    from ..report.regions_section import add_regions_section

    add_regions_section(report, ctx)


def _describe(result: dict[str, Any], config: Any) -> str:
    if result.get("skipped"):
        return "regions: skipped (regions.enabled is false)"
    lines = [f"regions ({result['layout']} layout, {result['n_regions']} regions): "
             "significant region x band cells (positive relevance above the channel share, "
             f"FDR {config.regions.alpha:g})"]
    for cls, cells in result["significant"].items():
        text = ", ".join(f"{c['region']}/{c['band']} x{c['ratio']:.2f}" for c in cells[:8])
        lines.append(f"  {cls}: {text or 'none'}")
    if not result["significant"]:
        lines.append("  none")
    lines.append(f"results in {config.output_dir}/regions")
    return "\n".join(lines)


STAGE = register(Stage(
    name="regions",
    help="relevance per scalp region x band per class, tested across subjects",
    folder="regions",
    sections=("regions",),
    requires=("explain",),
    run=_run,
    report=_report,
    describe=_describe,
    load=_load,
))

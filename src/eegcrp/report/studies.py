"""One finished study, read for comparison with others (:mod:`.compare`).

:func:`read_study` opens a run folder through the results layer only: every stage folder it
holds must carry a finished manifest whose products are intact (an unfinished stage is
refused with the command that resumes it), ``prepare``, ``train`` and ``decoding`` must have
run, and the analyses that did not run (sources and regions on a bipolar montage, say) are
recorded as such. What it keeps is what a discussion section compares: per held-out subject
the decoders' scores, the brain share of the relevance, the concepts per class with their
band and scalp region (stable first), the region x band cells and the faithfulness verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import StoreError
from ..results import DecodingResults, load_decoding, load_evaluation, open_stage

__all__ = ["StudySummary", "concept_table", "describe_settings", "read_study"]

#: Stages a comparison cannot do without.
REQUIRED = ("prepare", "train", "decoding")


@dataclass
class StudySummary:
    """What :func:`read_study` keeps of one finished study."""

    label: str
    folder: Path
    dataset: str
    task: str
    classes: list[str]
    subjects: list[str]
    repetitions: int
    decoding: DecodingResults
    composite: str = ""
    sources: dict[str, Any] | None = None
    sources_note: str = ""
    concepts: pd.DataFrame | None = None
    concepts_note: str = ""
    regions: pd.DataFrame | None = None
    regions_note: str = ""
    faithfulness: pd.DataFrame | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def chance(self) -> float:
        return 1.0 / len(self.classes)

    @property
    def scores(self) -> pd.DataFrame:
        """Held-out subjects x models of the comparisons' score (balanced accuracy)."""
        return self.decoding.table(self.decoding.summary.get("score", "balanced_accuracy"))


def _finished_stages(folder: Path) -> dict[str, dict[str, Any]]:
    """Every stage folder of the run, verified; refuses the first that did not finish."""
    from ..stages import STAGES
    from ..stages.manifest import MANIFEST_NAME

    out = {}
    for name, stage in STAGES.items():
        if (folder / stage.folder / MANIFEST_NAME).is_file():
            out[name] = open_stage(folder, name)[1]
        elif (folder / stage.folder).is_dir() and name != "report":
            raise StoreError(f"the {name} stage in {folder / stage.folder} did not finish (no "
                             f"manifest); finish the study with `eegcrp run "
                             f"{folder / 'config.yaml'} --out {folder}` before comparing it")
    missing = [s for s in REQUIRED if s not in out]
    if missing:
        raise StoreError(f"{folder} holds no finished {', '.join(missing)} stage; run "
                         f"`eegcrp run {folder / 'config.yaml'} --out {folder}` (or "
                         f"`eegcrp decoding ...` for a study trained before that stage "
                         "existed) before comparing it")
    return out


def _sources(folder: Path, manifest: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    extra = manifest.get("extra", {})
    if extra.get("skipped"):
        return None, f"not run ({extra['skipped']})"
    rec = extra.get("summary", {}).get("all", {}).get("hard/positive")
    if not rec:
        return None, "no relevance on components"
    failed = [c for c in extra.get("iclabel_conditions", [])
              if c["required"] and not c["holds"]]
    note = ("not interpretable: " + "; ".join(f"{c['name']} {', '.join(c['values'])}"
                                              for c in failed)) if failed else ""
    shares = {"brain": rec["brain"], **rec.get("top_non_brain", {})}
    return {"shares": shares, "n_subjects": rec.get("n_subjects")}, note


def _region_of(channel: str, regions: dict[str, list[str]] | None) -> str:
    """The (first) region holding ``channel`` ('' without regions or outside them)."""
    return next((r for r, chans in (regions or {}).items() if channel in chans), "")


def concept_table(concepts: Any, regions: dict[str, list[str]] | None = None,
                  n_channels: int = 3) -> pd.DataFrame:
    """The pooled concepts per class, stable first, each with the band and channels holding
    most of its positive relevance, and the region of its strongest channel.

    Columns: ``class``, ``cluster``, ``stable`` (True/False, NA when not assessable),
    ``recurrence``, ``kind`` (shared or subject-specific), ``n_models``, ``n_filters``,
    ``band``, ``band_share``, ``channels``, ``region``.
    """
    arrays = concepts.arrays
    rows = []
    for _, c in concepts.pooled().iterrows():
        rel = arrays["relevance_band"].sel(cluster=c["cluster_id"]).clip(min=0)
        per_band = rel.sum("channel")
        band = str(per_band.idxmax("band").values)
        in_band = rel.sel(band=band).to_series()
        top = in_band.sort_values(ascending=False).index[:n_channels]
        rows.append({"class": c["class"], "cluster": c["cluster"], "stable": c["stable"],
                     "recurrence": c["recurrence"], "kind": c["kind"],
                     "n_models": int(c["n_models"]), "n_filters": int(c["n_filters"]),
                     "band": band,
                     "band_share": float(per_band.max() / max(float(per_band.sum()), 1e-30)),
                     "channels": ", ".join(map(str, top)),
                     "region": _region_of(str(top[0]), regions)})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = table["stable"].astype(object).map({True: 0, False: 2}).fillna(1)
    return (table.assign(_order=order).sort_values(["class", "_order", "n_models"],
                                                   ascending=[True, True, False],
                                                   kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def read_study(run_dir: str | Path, label: str | None = None) -> StudySummary:
    """Read one finished study for comparison (see the module docstring).

    Raises
    ------
    StoreError
        When a stage did not finish, its products changed, or prepare, train or decoding
        did not run; the message names the command that fixes it.
    """
    from ..concepts import load_concepts
    from ..regions import load_regions

    folder = Path(run_dir)
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a folder; give the output folder of a study "
                         "(its output_dir or --out)")
    manifests = _finished_stages(folder)
    dataset = manifests["prepare"]["extra"]["dataset"]
    reps = sorted({int(f["repetition"]) for f in
                   manifests["train"]["extra"].get("folds", {}).values()})
    study = StudySummary(
        label=label or folder.name, folder=folder, dataset=str(dataset["name"]),
        task=str(dataset.get("task", "")), classes=list(dataset["classes"]),
        subjects=list(dataset["subjects"]), repetitions=len(reps),
        decoding=load_decoding(folder),
        settings={"band": [manifests["prepare"]["config"].get("preprocessing", {}).get(k)
                           for k in ("l_freq", "h_freq")],
                  "alignment": manifests["train"]["config"].get("training", {})
                  .get("alignment")})
    if "explain" in manifests:
        study.composite = str(manifests["explain"]["config"].get("explain", {})
                              .get("composite", ""))
    if "sources" in manifests:
        study.sources, study.sources_note = _sources(folder, manifests["sources"])
    else:
        study.sources_note = "not run"
    layout = None
    if "regions" in manifests and not manifests["regions"]["extra"].get("skipped"):
        reg = load_regions(folder)
        layout = reg.layout.regions
        study.regions = reg.cells
    else:
        study.regions_note = (manifests["regions"]["extra"].get("skipped", "not run")
                              if "regions" in manifests else "not run")
    if "concepts" in manifests:
        study.concepts = concept_table(load_concepts(folder), layout)
        if not manifests["concepts"]["extra"].get("summary", {}).get("stability_assessable"):
            study.concepts_note = "one repetition: stability not assessable"
    else:
        study.concepts_note = "not run"
    if "evaluate" in manifests:
        faith = load_evaluation(folder)["faithfulness"]
        study.faithfulness = faith if not faith.empty else None
    return study


def describe_settings(study: StudySummary) -> str:
    """A short text of the settings that set studies of one dataset apart."""
    lo, hi = study.settings.get("band", [None, None])
    band = f"{lo:g}-{hi:g} Hz" if lo is not None and hi is not None else "band n/a"
    return f"{band}, alignment {study.settings.get('alignment')}"


"""The sources and regions stages on the tiny study: products, conservation, a failing
subject, resume, skipping, refusals, the report sections."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.regions import load_regions
from eegcrp.sources import ICAConvergenceError, SourcesError, load_sources
from tests.helpers import copy_study, run_stages, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def study(tiny_study, tmp_path_factory, request):
    """The tiny study with sources (subject S02's ICA made to fail) and regions run."""
    import eegcrp.sources.reuse as sources  # where the stage's fit happens

    config = copy_study(tiny_study, tmp_path_factory.mktemp("src") / "run")
    config.sources.n_jobs = 1  # in-process, so the patched fit applies
    real = sources.fit_subject

    def flaky(raw, subject, **kwargs):
        if subject == "S02":
            raise ICAConvergenceError(f"the ICA of subject {subject} did not converge")
        return real(raw, subject, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(sources, "fit_subject", flaky)
    # the cache is shared with other tests' copies: fit here, whatever they kept there
    patch.setattr("eegcrp.sources.reuse.recall", lambda path, key: None)
    try:
        run_stages(config, "concepts", "sources", "regions")
    finally:
        patch.undo()
    return config


def test_sources_products_conservation_and_the_failed_subject(study):
    run = load_sources(study.output_dir)
    assert run.failed == {"S02": "the ICA of subject S02 did not converge"}
    assert run.subjects == ["S01", "S03"]
    assert run.extra["conservation_error_max"] < 1e-6
    for name in run.extra["order"]:
        fold = run.fold(name)
        comp, res, total = (fold[k].values for k in ("component", "residual", "total"))
        subject = fold["window_subject"].values
        assert fold["component"].dims == ("pair", "component")
        ok = subject != "S02"
        np.testing.assert_allclose(np.nansum(comp[ok], 1) + res[ok], total[ok], rtol=1e-6,
                                   atol=1e-9)
        assert np.isnan(res[~ok]).all()  # the failed subject's windows are left out
    units = run.units
    assert "S02" not in set(units["subject"])
    shares = run.shares
    brain = shares[(shares["group"] == "all") & (shares["category"] == "brain")]
    assert (brain["n_subjects"] == 2).all() and brain["share"].between(0, 1).all()
    comps = run.components
    assert set(comps["subject"]) == {"S01", "S03"}
    assert {"label", "explained_variance", "p_brain"} <= set(comps.columns)
    ica = run.ica("S01")
    assert len(ica.ch_names) == 19 and ica.n_components == 18  # CAR removes one
    # ICLabel's conditions: 19 channels, CAR and extended infomax hold; 1-40 Hz and 3328
    # samples for 18 components (fewer than 20 x 18²) do not
    conditions = {c["name"]: c for c in run.extra["iclabel_conditions"]}
    assert [n for n, c in conditions.items() if not c["holds"]] == ["band", "samples"]
    assert conditions["band"]["values"] == ["1-40 Hz"] and not conditions["band"]["required"]


def test_report_sections_name_the_failed_subject(study):
    html = (study.output_dir / "report.html")
    run_stages(study, "report")
    text = html.read_text()
    assert "Independent components" in text and "Scalp regions" in text
    assert "ICA failed for S02" in text and "How much of the decision is brain" in text
    assert "Brain share per concept cluster" in text


def test_rerun_reuses_the_files(study):
    before = {p: p.stat().st_mtime_ns for p in (study.output_dir / "sources").rglob("*.nc")}
    run_stages(study, "sources")
    # the failed subject is retried and now succeeds: the folds with its windows are
    # recomputed, the others reused
    run = load_sources(study.output_dir)
    assert run.failed == {} and "S02" in set(run.units["subject"])
    redone = {p.name for p in before if p.stat().st_mtime_ns != before[p]}
    assert redone == {"rep00_sub-S02.nc"}
    assert (study.output_dir / "sources" / "ica" / "sub-S02.nc").is_file()


def test_a_kept_ica_is_reused_by_another_study_with_the_same_bytes(study, tmp_path,
                                                                     monkeypatch):
    import shutil

    import eegcrp.sources.reuse as sources  # where the stage's fit happens
    from eegcrp.stages.manifest import Manifest

    other = copy_study(study, tmp_path / "other")
    shutil.rmtree(other.output_dir / "sources")
    real = sources.fit_subject

    def only_s02(raw, subject, **kwargs):  # S02 failed in `study`, so nothing was kept
        assert subject == "S02", f"the kept ICA of {subject} was fitted again"
        return real(raw, subject, **kwargs)

    monkeypatch.setattr(sources, "fit_subject", only_s02)
    run_stages(other, "sources")
    records = Manifest.read(other.output_dir / "sources").extra["subjects"]
    assert records["S01"]["reused_from_cache"] and records["S03"]["reused_from_cache"]
    for name in ("sub-S01.nc", "sub-S03.nc"):
        assert (other.output_dir / "sources" / "ica" / name).read_bytes() == (
            study.output_dir / "sources" / "ica" / name).read_bytes()


def test_a_kept_ica_with_another_key_or_damaged_is_not_reused(tmp_path):
    from eegcrp.sources.reuse import memo_key, recall, remember

    ica = sources_ica()
    key = memo_key("0" * 64, {"method": "picard"})
    assert key != memo_key("1" * 64, {"method": "picard"})
    assert key != memo_key("0" * 64, {"method": "infomax"})
    path = tmp_path / "ica" / "sub-A-x.nc"
    remember(ica, path, key)
    again = recall(path, key)
    np.testing.assert_array_equal(again.unmixing, ica.unmixing)
    assert recall(path, "another") is None
    path.write_bytes(path.read_bytes()[:100])  # truncated by a killed writer
    assert recall(path, key) is None


def sources_ica():
    from eegcrp.sources import SubjectICA

    rng = np.random.default_rng(0)
    return SubjectICA("A", ["C3", "Cz", "C4"], rng.standard_normal((2, 3)),
                      rng.standard_normal((3, 2)), np.zeros(3), np.full((2, 7), 1 / 7),
                      np.array([0.6, 0.3]), {"method": "picard"})


def test_regions_products(study):
    run = load_regions(study.output_dir)
    cells, layout = run.cells, run.layout
    assert set(cells["region"]) == set(layout.regions) and layout.empty == [
        "occipital_midline"]
    assert set(cells["measure"]) == {"signed", "positive", "absolute"}
    part = cells[(cells["measure"] == "positive")]
    # shares of the regions (which partition the channels) sum to 1 per class and band
    sums = part.groupby(["class", "band"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-9)
    assert part["p"].between(0, 1).all()
    assert not run.class_difference.empty
    per_subject = run.subject_cells  # the values behind the group statistics
    mean = per_subject.groupby(["class", "measure", "region", "band"])["share"].mean()
    got = cells.set_index(["class", "measure", "region", "band"])["share"]
    np.testing.assert_allclose(got.loc[mean.index].to_numpy(), mean.to_numpy())


def test_disabled_stages_are_recorded_as_skipped(tiny_study, tmp_path):
    config = copy_study(tiny_study, tmp_path / "run")
    config.sources.enabled = False
    config.regions.enabled = False
    run_stages(config, "concepts", "sources", "regions")
    assert load_sources(config.output_dir).skipped == "sources.enabled is false"
    assert load_regions(config.output_dir).skipped == "regions.enabled is false"


def test_z_scored_prepared_windows_are_refused(tmp_path):
    config = tiny_config(tmp_path, preprocessing={"zscore": True})
    run_stages(config, "prepare", "train", "explain", "concepts")
    with pytest.raises(SourcesError, match=r"preprocessing\.zscore"):
        run_stages(config, "sources")


def test_ica_per_cluster_warns_and_gives_shares(study):
    from eegcrp.sources.cluster import ClusterSources, cluster_sources
    from eegcrp.stages.prepare import load_prepared
    from eegcrp.stages.registry import require
    from eegcrp.store import open_relevance

    run = open_relevance(study.output_dir)
    data = load_prepared(require("prepare", study))
    windows = {s: data[s] for s in data.subjects}
    table = run.table()
    groups = {(k, c): c for k, c in zip(table["key"], table["class"], strict=True)}
    with pytest.warns(UserWarning, match="pools windows of several subjects"):
        out = cluster_sources(run, windows, groups, n_boot=200)
    assert isinstance(out, ClusterSources) and set(out.icas) == set(run.classes)
    assert set(out.shares["group"]) == set(run.classes)


def test_a_sparse_montage_gets_the_iclabel_qualification(tmp_path):
    """4 channels: ICLabel's topographies rest on too few points, so the summary withholds
    the brain share as a finding and says why."""
    from eegcrp.report.headlines import sources_headline
    from eegcrp.stages.manifest import Manifest

    config = tiny_config(tmp_path, dataset={"channels": ["C3", "Cz", "C4", "Pz"]},
                         sources={"n_jobs": 1})
    run_stages(config, "prepare", "train", "explain", "concepts", "sources")
    manifest = Manifest.read(config.output_dir / "sources")
    text = sources_headline(manifest).text
    assert "<b>not interpretable</b>" in text and "channels 4 (ICLabel assumes &gt;= 16)" in text

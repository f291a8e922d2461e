"""``eegcrp compare RUN [RUN ...]``: finished studies side by side on one HTML page.

The page (an :class:`mne.Report`) compares what a paper's discussion compares across tasks:
decoding against chance and the same-fold baselines (forest plot with 95 % t intervals over
held-out subjects), the statistics MOABB reports for decoders (per dataset a one-sided
paired test and standardised mean difference, combined across datasets by Stouffer's method
weighted by the square root of the subjects: :mod:`eegcrp.comparison`), the share of
relevance on brain and non-brain components, the concepts per class with their band and
scalp region (stable ones first, unstable ones marked), the region x band cells and the
faithfulness verdicts. Every study is read with :func:`.studies.read_study`, which refuses
folders whose stages did not finish.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import mne
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..comparison import combine, paired_test
from ..errors import EEGCRPError
from ..io import atomic_path
from .figures import forest_plot, subplots
from .headlines import MODEL_NAMES
from .studies import StudySummary, describe_settings, read_study
from .tables import html_table

__all__ = ["build_comparison", "comparison_tests"]

#: The models every study's decoding stage scores, in the page's order.
MODELS = ("eegnet", "eegnet_ensemble", "logbp+lr", "ts+lr")
_COLORS = {"eegnet": "tab:blue", "eegnet_ensemble": "tab:purple", "logbp+lr": "tab:gray",
           "ts+lr": "tab:olive"}


def _esc(value: object) -> str:
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    return html_table(frame)


def _labels(studies: Sequence[StudySummary]) -> None:
    """Make labels unique: studies of the same dataset are told apart by their settings."""
    seen: dict[str, int] = {}
    for s in studies:
        seen[s.label] = seen.get(s.label, 0) + 1
    for s in studies:
        if seen[s.label] > 1:
            s.label = f"{s.label} ({describe_settings(s)})"


def comparison_tests(studies: Sequence[StudySummary]) -> pd.DataFrame:
    """EEGNet against chance, its repetition ensemble and each baseline: per study the
    paired test over held-out subjects, then all studies combined (MOABB's meta-analysis).

    Columns: ``comparison``, ``study``, ``n``, ``difference``, ``ci_low``, ``ci_high``,
    ``smd``, ``p`` (one-sided, EEGNet better), ``test``.
    """
    rows = []
    for other in ("chance", *MODELS[1:]):
        tests = []
        for s in studies:
            table = s.scores
            if "eegnet" not in table or (other != "chance" and other not in table):
                continue
            b = np.full(len(table), s.chance) if other == "chance" else table[other]
            t = paired_test(table["eegnet"], b)
            tests.append(t)
            rows.append({"comparison": f"EEGNet vs {MODEL_NAMES.get(other, other)}",
                         "study": s.label, "n": t.n, "difference": t.mean_difference,
                         "ci_low": t.ci[0], "ci_high": t.ci[1], "smd": t.smd, "p": t.p,
                         "test": t.test})
        if len(tests) > 1:
            c = combine(tests)
            rows.append({"comparison": f"EEGNet vs {MODEL_NAMES.get(other, other)}",
                         "study": f"combined ({c.n_datasets} studies)", "n": c.n_subjects,
                         "difference": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                         "smd": c.smd, "p": c.p, "test": "Stouffer, sqrt(n) weights"})
    return pd.DataFrame(rows)


def _decoding_figure(studies: Sequence[StudySummary]) -> Figure:
    """Every model of every study; scores minus chance when the studies' chance levels
    differ (one shared chance line otherwise)."""
    one_chance = len({s.chance for s in studies}) == 1
    rows, colors = [], []
    for s in studies:
        off = 0.0 if one_chance else s.chance
        models = s.decoding.summary["models"]
        for m in (m for m in MODELS if m in models):
            mean, (lo, hi) = models[m]["mean"], models[m]["ci"]
            rows.append((f"{s.label}: {MODEL_NAMES[m]}", mean - off, lo - off, hi - off))
            colors.append(_COLORS[m])
    return forest_plot(rows, chance=studies[0].chance if one_chance else 0.0,
                       xlabel="balanced accuracy" + ("" if one_chance else " above chance"),
                       colors=colors, title="Mean over held-out subjects (95 % CI)")


def _sources_figure(studies: Sequence[StudySummary]) -> Figure | None:
    have = [s for s in studies if s.sources is not None]
    if not have:
        return None
    cats = ["brain", "eye", "muscle", "heart", "line_noise", "channel_noise", "other"]
    fig, ax = subplots(figsize=(6.4, 1.0 + 0.5 * len(have)), layout="constrained")
    cmap = {"brain": "tab:green", "eye": "tab:orange", "muscle": "tab:red",
            "heart": "tab:pink", "line_noise": "tab:gray", "channel_noise": "tab:brown",
            "other": "lightgray"}
    labelled: set[str] = set()
    for k, s in enumerate(have[::-1]):
        left = 0.0
        for c in cats:
            share = s.sources["shares"].get(c)
            if share is None:
                continue
            ax.barh(k, share[0], left=left, color=cmap[c], edgecolor="white",
                    label=None if c in labelled else c)
            labelled.add(c)
            left += share[0]
        lo, hi = s.sources["shares"]["brain"][1:]
        ax.errorbar(s.sources["shares"]["brain"][0], k, xerr=[[s.sources["shares"]["brain"][0]
                    - lo], [hi - s.sources["shares"]["brain"][0]]], color="black", capsize=3)
    ax.set_yticks(range(len(have)), [s.label for s in have[::-1]])
    ax.set(xlabel="share of positive relevance (ICLabel hard labels)", xlim=(0, 1),
           title="ICLabel categories' share (error bar: brain, 95 % CI)")
    ax.legend(frameon=False, fontsize=7, ncol=4, loc="upper center",
              bbox_to_anchor=(0.5, -0.35 if len(have) < 3 else -0.15))
    return fig


def _regions_figure(s: StudySummary) -> Figure:
    cells = s.regions[s.regions["measure"] == "positive"]
    classes = list(dict.fromkeys(cells["class"]))
    regions = list(dict.fromkeys(cells["region"]))
    bands = list(dict.fromkeys(cells["band"]))
    fig, axes = subplots(1, len(classes), figsize=(3.2 * len(classes) + 1, 0.3 * len(regions)
                                                   + 1.6), layout="constrained",
                         squeeze=False)
    vmax = float(np.nanmax(np.abs(np.log2(cells["ratio"].clip(lower=1e-3)))) or 1.0)
    for ax, cls in zip(axes[0], classes, strict=True):
        part = cells[cells["class"] == cls]
        ratio = part.pivot(index="region", columns="band", values="ratio").reindex(
            index=regions, columns=bands)
        sig = part.pivot(index="region", columns="band", values="significant").reindex(
            index=regions, columns=bands).fillna(False).astype(bool)
        im = ax.imshow(np.log2(ratio.clip(lower=1e-3)), cmap="RdBu_r", vmin=-vmax,
                       vmax=vmax, aspect="auto")
        for (i, j), hit in np.ndenumerate(sig.to_numpy()):
            if hit:
                ax.text(j, i, "*", ha="center", va="center", fontsize=11)
        ax.set_xticks(range(len(bands)), bands, rotation=45, ha="right")
        ax.set_yticks(range(len(regions)), regions if ax is axes[0][0] else [])
        ax.set_title(cls, fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="log2 (share / channel share)")
    fig.suptitle(f"{s.label}: relevance per region x band (* significant, FDR)", fontsize=9)
    return fig


def _concepts_html(s: StudySummary) -> str:
    if s.concepts is None or s.concepts.empty:
        return f"<p><b>{_esc(s.label)}</b>: {_esc(s.concepts_note or 'no concepts')}.</p>"
    t = s.concepts.copy()
    t["stability"] = t["stable"].astype(object).map({True: "stable", False: "UNSTABLE"}).fillna(
        "not assessable")
    t["recurrence"] = [("" if v != v else f"{100 * v:.0f} %") for v in t["recurrence"]]
    t["band share"] = [f"{100 * v:.0f} %" for v in t["band_share"]]
    cols = ["class", "cluster", "stability", "recurrence", "kind", "n_models", "band",
            "band share", "region", "channels"]
    note = f" ({_esc(s.concepts_note)})" if s.concepts_note else ""
    return f"<h4>{_esc(s.label)}{note}</h4>" + _table(t[cols])


def _faithfulness_html(studies: Sequence[StudySummary]) -> str:
    rows = []
    for s in studies:
        f = s.faithfulness
        if f is None:
            rows.append({"study": s.label, "method": "", "channels": "not run", "bands": "",
                         "time": ""})
            continue
        part = f[f["method"] == f"lrp:{s.composite}"] if s.composite else f
        verdicts = {r["domain"]: f"{r['verdict']} (d_z {r['d_z']:.2f}, p {r['p']:.2g})"
                    for _, r in part.iterrows()}
        rows.append({"study": s.label, "method": part["method"].iloc[0] if len(part) else "",
                     **{d: verdicts.get(d, "") for d in ("channels", "bands", "time")}})
    return ("<p>Paired one-sided t-test over held-out subjects of AOPC (most relevant "
            "removed first) against random removal; 'faithful' needs p &lt; alpha and d_z "
            "&gt;= the configured minimum effect (the studies' own settings).</p>"
            + _table(pd.DataFrame(rows)))


def _overview(studies: Sequence[StudySummary]) -> str:
    rows = []
    for s in studies:
        models = s.decoding.summary["models"]
        rows.append({
            "study": s.label, "dataset": s.dataset, "task": s.task.replace("_", " "),
            "classes": ", ".join(s.classes), "subjects": len(s.subjects),
            "repetitions": s.repetitions, "settings": describe_settings(s),
            **{MODEL_NAMES[m]: f"{models[m]['mean']:.3f} [{models[m]['ci'][0]:.3f}, "
                               f"{models[m]['ci'][1]:.3f}]" for m in MODELS if m in models},
            "folder": str(s.folder)})
    return ("<p>Balanced accuracy, mean over held-out subjects [95 % t interval]; EEGNet: "
            "single models, mean over repetitions; ensemble: their probabilities averaged."
            "</p>" + _table(pd.DataFrame(rows)))


def _tests_html(tests: pd.DataFrame, studies: Sequence[StudySummary]) -> str:
    t = tests.copy()
    for col in ("difference", "ci_low", "ci_high"):
        t[col] = ["" if v != v else f"{v:+.3f}" for v in t[col]]
    t["smd"] = [f"{v:+.2f}" for v in t["smd"]]
    t["p"] = [f"{v:.3g}" for v in t["p"]]
    return ("<p>As MOABB reports decoders across datasets: per study a one-sided paired test "
            "over held-out subjects (exact sign-flip permutation of the summed differences up "
            "to 13 subjects, 10 000 seeded sign flips up to 19, Wilcoxon signed-rank from "
            "20), SMD = mean / sd of the paired differences; combined: Stouffer's method and "
            "the mean SMD, both weighted by sqrt(subjects). p: EEGNet better.</p>"
            + _repeated_data(studies) + _table(t))


def _repeated_data(studies: Sequence[StudySummary]) -> str:
    """A warning when two studies decode the same recordings: Stouffer's method assumes
    independent studies, which they are not."""
    counts = pd.Series([s.dataset for s in studies]).value_counts()
    shared = counts[counts > 1].index.tolist()
    if not shared:
        return ""
    return ("<p><b>Not independent:</b> several studies decode the same recordings ("
            + _esc(", ".join(shared)) + "); the combined rows count their subjects more than "
            "once and overstate the evidence. Combine one study per dataset.</p>")


def build_comparison(runs: Sequence[str | Path], target: str | Path,
                     labels: Sequence[str] | None = None) -> Path:
    """Write the comparison page of the finished studies in ``runs`` to ``target``.

    Raises
    ------
    StoreError
        When a folder is not a finished study (see :func:`.studies.read_study`).
    EEGCRPError
        When fewer than one study is given or the labels do not match the runs.
    """
    if not runs:
        raise EEGCRPError("give at least one study folder to compare")
    if labels is not None and len(labels) != len(runs):
        raise EEGCRPError(f"{len(labels)} labels for {len(runs)} studies; give one --label "
                          "per study or none")
    studies = [read_study(r, None if labels is None else labels[k])
               for k, r in enumerate(runs)]
    if labels is None:
        for s in studies:
            s.label = s.dataset
        _labels(studies)
    report = mne.Report(title="eegcrp: studies compared", verbose="error")
    report.add_html(_overview(studies), title="Studies", section="Studies")
    report.add_figure(_decoding_figure(studies), title="Decoding against chance and baselines",
                      caption="Same held-out subjects and windows within a study.",
                      section="Decoding")
    report.add_html(_tests_html(comparison_tests(studies), studies),
                    title="Decoders across datasets", section="Decoding")
    fig = _sources_figure(studies)
    notes = "".join(f"<li>{_esc(s.label)}: {_esc(s.sources_note)}</li>" for s in studies
                    if s.sources_note)
    if fig is not None:
        report.add_figure(fig, title="Brain and non-brain relevance", section="Sources")
    if notes:
        report.add_html(f"<ul>{notes}</ul>", title="Sources: notes", section="Sources")
    report.add_html("<p>Pooled concept clusters per class: stable ones first (recurring in "
                    "at least the configured share of repetitions), UNSTABLE ones marked; "
                    "band and channels holding most of each cluster's positive relevance, "
                    "region of its strongest channel.</p>"
                    + "".join(_concepts_html(s) for s in studies),
                    title="Concepts per class", section="Concepts")
    for s in studies:
        if s.regions is not None:
            report.add_figure(_regions_figure(s), title=f"Regions x bands: {s.label}",
                              section="Regions")
        else:
            report.add_html(f"<p>{_esc(s.label)}: {_esc(s.regions_note)}.</p>",
                            title=f"Regions x bands: {s.label}", section="Regions")
    report.add_html(_faithfulness_html(studies), title="Faithfulness verdicts",
                    section="Faithfulness")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, ".html") as tmp:
        report.save(tmp, overwrite=True, open_browser=False, verbose="error")
    return target

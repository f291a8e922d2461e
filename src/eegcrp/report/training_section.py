"""Report section for the classification stage (leave-one-subject-out EEGNet).

Reads ``<output_dir>/training/metrics.csv`` and the per-fold JSON files; adds nothing when
the training stage has not run.
"""

from __future__ import annotations

import html
from typing import Any

import mne
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..stats import chance_threshold
from .context import ReportContext
from .figures import subplots

__all__ = ["add_training_section", "classification_summary"]


def _load(ctx: ReportContext) -> tuple[pd.DataFrame, list[dict]]:
    """metrics.csv and the fold records the verified train manifest lists."""
    from ..results import load_training

    results = load_training(ctx.folder("train"))
    return results.metrics, results.histories()


def _subject_figure(metrics: pd.DataFrame, chance: float, threshold: pd.Series,
                    score: str) -> Figure:
    order = (metrics.groupby("test_subject")[score].mean().sort_values().index.tolist())
    fig, ax = subplots(figsize=(max(6, 0.45 * len(order) + 2), 4), layout="constrained")
    data = [metrics.loc[metrics["test_subject"] == s, score].to_numpy() for s in order]
    if metrics["repetition"].nunique() > 2:
        ax.boxplot(data, positions=np.arange(len(order)), widths=0.6, showfliers=False)
    rng = np.random.default_rng(0)
    for k, values in enumerate(data):
        ax.scatter(k + rng.uniform(-0.12, 0.12, len(values)), values, s=14, alpha=0.7,
                   color="tab:blue", zorder=3)
        ax.hlines(threshold[order[k]], k - 0.4, k + 0.4, color="tab:red", lw=1.2,
                  label="p < 0.05 (permutation)" if k == 0 else None)
    ax.axhline(chance, color="gray", ls="--", lw=1, label=f"chance {chance:.2f}")
    ax.set_xticks(np.arange(len(order)), order, rotation=45, ha="right")
    label = score.replace("_", " ")
    ax.set(xlabel="held-out subject", ylabel=label, ylim=(0, 1.02),
           title=f"LOSO {label} per held-out subject (points: repetitions)")
    ax.legend(frameon=False, loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _repetition_figure(metrics: pd.DataFrame, chance: float) -> Figure:
    per_rep = metrics.groupby("repetition")[["accuracy", "balanced_accuracy"]].mean()
    fig, ax = subplots(figsize=(5, 3.4), layout="constrained")
    ax.plot(per_rep.index, per_rep["accuracy"], "o-", label="accuracy")
    ax.plot(per_rep.index, per_rep["balanced_accuracy"], "s--", label="balanced accuracy")
    ax.axhline(chance, color="gray", ls="--", lw=1)
    ax.set(xlabel="repetition", ylabel="mean over test subjects", ylim=(0, 1.02),
           title="Accuracy per repetition")
    ax.set_xticks(per_rep.index)
    ax.legend(frameon=False, fontsize=8)
    return fig


def _confusion_figure(folds: list[dict], classes: list[str]) -> Figure:
    total = np.sum([np.asarray(f["confusion_matrix"]) for f in folds], axis=0)
    norm = total / np.maximum(total.sum(axis=1, keepdims=True), 1)
    fig, ax = subplots(figsize=(3.8, 3.4), layout="constrained")
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(total[i, j])})", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion (all folds, row-normalised)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def _curves_figure(folds: list[dict]) -> Figure:
    fig, axes = subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for key, ax, label in (("loss", axes[0], "loss"), ("acc", axes[1], "accuracy")):
        for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
            curves = [np.asarray(f["history"][f"{split}_{key}"], float) for f in folds
                      if f.get("history", {}).get(f"{split}_{key}")]
            if not curves:
                continue
            for c in curves:
                ax.plot(np.arange(1, len(c) + 1), c, color=color, alpha=0.15, lw=0.8)
            n = max(len(c) for c in curves)
            padded = np.full((len(curves), n), np.nan)
            for i, c in enumerate(curves):
                padded[i, : len(c)] = c
            ax.plot(np.arange(1, n + 1), np.nanmean(padded, 0), color=color, lw=2,
                    label=f"{split} (mean of folds still training)")
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle("Learning curves (thin: folds)")
    return fig


def _protocol_text(tc: Any) -> str:
    """One sentence on how the models were trained and selected."""
    if tc.protocol == "thesis":
        text = (f"Thesis protocol: {tc.max_epochs} fixed epochs, no validation, unshuffled "
                "batches, unweighted loss, final weights.")
    elif tc.model_selection == "inner_cv":
        text = (f"Epoch count chosen per fold by an inner {tc.inner_folds}-fold "
                f"leave-subjects-out loop on the training subjects ({tc.monitor}, up to "
                f"{tc.max_epochs} epochs, at least {tc.min_epochs}); no early stopping.")
    else:
        val = (f"{tc.validation_subjects:g} of the training subjects"
               if isinstance(tc.validation_subjects, float)
               else f"{tc.validation_subjects} training subject(s)")
        text = (f"Early stopping on {val} held out per fold ({tc.monitor}, patience "
                f"{tc.patience}, {tc.min_epochs}-{tc.max_epochs} epochs), best epoch restored.")
    alignment = {
        "none": "No subject alignment.",
        "euclidean": "Euclidean alignment per subject (whitened by its mean spatial "
                     "covariance; the held-out subject's map uses its own unlabelled windows, "
                     "i.e. transductive).",
        "standardize": "Per-subject channel standardisation (the held-out subject's from its "
                       "own unlabelled windows, i.e. transductive).",
    }[tc.alignment]
    return f"{text} {alignment}"


def classification_summary(ctx: ReportContext) -> dict[str, Any] | None:
    """The numbers the classification section and the report's summary state.

    Keys: ``metrics``, ``folds``, ``classes``, ``chance``, ``score`` (``accuracy`` or, for
    imbalanced classes, ``balanced_accuracy``), ``mean``/``sd`` of it over subjects x
    repetitions, ``threshold`` (per-subject permutation threshold, p < 0.05), ``above``
    (held-out subjects whose mean exceeds it), ``labels``, ``trials``, ``counts``.
    """
    metrics, folds = _load(ctx)
    if metrics.empty:
        return None
    classes = list(ctx.manifests["prepare"].extra["dataset"]["classes"])
    # test labels and trials from the first repetition's fold records (every repetition
    # tests the same windows of a subject)
    labels: dict[str, np.ndarray] = {}
    trials: dict[str, np.ndarray | None] = {}
    for fold in folds:
        subject = str(fold["test_subject"])
        if subject not in labels:
            labels[subject] = np.asarray(fold["predictions"]["y_true"], np.int64)
            trial = fold["predictions"].get("trial")
            trials[subject] = None if trial is None else np.asarray(trial)
    counts = {s: np.bincount(labels[s], minlength=len(classes)) for s in labels}
    # Accuracy rewards predicting the majority class of an imbalanced test set (a constant
    # "rest" scores 0.75 on eegmat); balanced accuracy centres every chance level on 1/k.
    imbalanced = any(len(set(c.tolist())) > 1 for c in counts.values())
    score = "balanced_accuracy" if imbalanced else "accuracy"
    threshold = pd.Series({
        s: chance_threshold(labels[s], trials=trials[s], balanced=imbalanced) for s in labels
    })
    tested = metrics["test_subject"].unique()
    above = int((metrics.groupby("test_subject")[score].mean()
                 > threshold.reindex(tested)).sum())
    return {"metrics": metrics, "folds": folds, "classes": classes,
            "chance": 1.0 / len(classes), "score": score, "imbalanced": imbalanced,
            "mean": float(metrics[score].mean()), "sd": float(metrics[score].std()),
            "threshold": threshold, "above": above, "n_subjects": len(tested),
            "labels": labels, "trials": trials, "counts": counts}


def add_training_section(report: mne.Report, ctx: ReportContext) -> None:
    """Add the classification section from the verified ``train`` results."""
    cs = classification_summary(ctx)
    if cs is None:
        return
    section = "Classification"
    metrics, folds, classes, chance = cs["metrics"], cs["folds"], cs["classes"], cs["chance"]
    score, imbalanced, threshold = cs["score"], cs["imbalanced"], cs["threshold"]
    counts, trials = cs["counts"], cs["trials"]
    summary = metrics[["accuracy", "balanced_accuracy", "f1_macro", "roc_auc"]].agg(
        ["mean", "std"]).T
    per_rep = metrics.groupby("repetition")[score].mean()
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['mean']:.3f}</td>"
                   f"<td>{v['std']:.3f}</td></tr>" for k, v in summary.iterrows())
    tested = metrics["test_subject"].unique()
    above = cs["above"]
    label = score.replace("_", " ")
    n_windows = np.mean([len(t) for t in trials.values() if t is not None] or [np.nan])
    n_trials = np.mean([len(np.unique(t)) for t in trials.values() if t is not None]
                       or [np.nan])
    notes = []
    if imbalanced:
        total = np.sum(list(counts.values()), axis=0)
        notes.append(
            "Classes are imbalanced (" + ", ".join(
                f"{html.escape(c)} {n}" for c, n in zip(classes, total.tolist(), strict=True))
            + f" windows): always predicting the majority class scores accuracy "
            f"{total.max() / total.sum():.2f}, so subjects are judged by balanced accuracy."
        )
    if n_windows > n_trials:
        notes.append(
            f"Test sets hold {n_windows:.0f} windows from {n_trials:.0f} trials per subject on "
            "average; windows of one trial are not independent, so the permutation "
            "threshold permutes whole trials."
        )
    report.add_html(
        f"<p>{html.escape(_protocol_text(ctx.config.training))}</p>"
        f"<p>{metrics['test_subject'].nunique()} folds x {metrics['repetition'].nunique()} "
        f"repetition(s); mean {label} over repetitions {per_rep.mean():.3f} "
        + (f"(sd {per_rep.std(ddof=0):.3f})" if len(per_rep) > 1 else
           "(one repetition: no spread over seeds)")
        + f"; chance {chance:.2f}; "
        f"{above} of {len(tested)} held-out subjects above their "
        f"permutation threshold (mean {label} over repetitions, p &lt; 0.05).</p>"
        + "".join(f"<p>{n}</p>" for n in notes)
        + "<table class='table table-sm'><tr><th>metric</th><th>mean</th><th>sd</th></tr>"
        f"{rows}</table>",
        title="Summary", section=section,
    )
    for title, fig in (
        (f"{label.capitalize()} per test subject",
         _subject_figure(metrics, chance, threshold, score)),
        ("Accuracy per repetition", _repetition_figure(metrics, chance)),
        ("Confusion matrix", _confusion_figure(folds, classes) if folds else None),
        ("Learning curves", _curves_figure(folds) if folds else None),
    ):
        if fig is not None:
            report.add_figure(fig, title=title, section=section)

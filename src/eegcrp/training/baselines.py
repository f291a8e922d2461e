"""Non-deep baselines scored on the same leave-one-subject-out folds as EEGNet.

A decoder's held-out accuracy means little without what a simple, well-understood pipeline
reaches on the same windows and folds. Two are offered:

* ``logbp+lr``: log band power (Welch) of every channel in 4-8, 8-13, 13-20 and 20-30 Hz,
  minus its channel mean per window, standardised per subject on its own unlabelled windows,
  then L2 logistic regression;
* ``ts+lr``: OAS covariance of each window (pyriemann), re-centred per subject to the
  identity (the Riemannian counterpart of Euclidean alignment; transductive like it), tangent
  space at the identity, then L2 logistic regression.

Both train on every subject but the held-out one (no validation split: they have nothing to
stop early) with balanced class weights, and return per held-out subject the probabilities
of its windows in the prepared order, so their scores come from the same code as EEGNet's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import welch

__all__ = ["BANDS", "baseline_features", "log_band_power", "loso_probabilities",
           "tangent_space"]

#: Bands of the log band-power baseline (Hz).
BANDS = ((4.0, 8.0), (8.0, 13.0), (13.0, 20.0), (20.0, 30.0))


def _standardise_per_subject(f: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = np.empty_like(f)
    for g in np.unique(groups):
        rows = groups == g
        out[rows] = (f[rows] - f[rows].mean(0)) / (f[rows].std(0) + 1e-12)
    return out


def log_band_power(x: np.ndarray, sfreq: float, groups: np.ndarray) -> np.ndarray:
    """Per-window log band power in :data:`BANDS`, channel mean removed, standardised per
    subject: ``(n_windows, n_channels * 4)``. Bands above Nyquist are left out."""
    freqs, psd = welch(x, fs=sfreq, nperseg=min(x.shape[-1], int(sfreq)), axis=-1)
    feats = []
    for lo, hi in BANDS:
        sel = (freqs >= lo) & (freqs < hi)
        if not sel.any():
            continue
        logp = np.log(psd[..., sel].mean(-1) + 1e-30)
        feats.append(logp - logp.mean(axis=1, keepdims=True))
    return _standardise_per_subject(np.concatenate(feats, axis=1), np.asarray(groups))


def tangent_space(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Tangent vectors at the identity of per-subject re-centred OAS covariances."""
    from pyriemann.estimation import Covariances
    from pyriemann.geometry.base import invsqrtm
    from pyriemann.geometry.mean import mean_riemann
    from pyriemann.tangentspace import TangentSpace

    groups = np.asarray(groups)
    # Scaled to about unit variance: OAS shrinkage and the Riemannian mean are scale-free,
    # but volts squared (1e-10) sit near float64's tolerance in their eigen-solvers.
    covs = Covariances("oas").fit_transform(x.astype(np.float64) / (x.std() + 1e-30))
    for g in np.unique(groups):
        rows = groups == g
        ref = invsqrtm(mean_riemann(covs[rows]))
        covs[rows] = ref @ covs[rows] @ ref
    eye = np.eye(covs.shape[1])[None]
    return TangentSpace(metric="riemann").fit(eye).transform(covs)


#: Feature makers by baseline name: ``f(x, sfreq, groups) -> features``.
FEATURES: dict[str, Callable[[np.ndarray, float, np.ndarray], np.ndarray]] = {
    "logbp+lr": log_band_power,
    "ts+lr": lambda x, sfreq, groups: tangent_space(x, groups),
}


def baseline_features(name: str, x: np.ndarray, sfreq: float, groups: np.ndarray
                      ) -> np.ndarray:
    """The features of baseline ``name`` (see :data:`FEATURES`)."""
    return FEATURES[name](x, sfreq, np.asarray(groups))


def loso_probabilities(features: np.ndarray, y: np.ndarray, groups: np.ndarray,
                       subjects: list[str], n_classes: int, C: float = 0.1
                       ) -> dict[str, np.ndarray]:
    """Per held-out subject, the class probabilities of its windows (in dataset order)
    from a logistic regression trained on every other subject."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    groups = np.asarray(groups)
    out = {}
    for test in subjects:
        tr, te = groups != test, groups == test
        model = make_pipeline(StandardScaler(), LogisticRegression(
            C=C, max_iter=5000, class_weight="balanced"))
        model.fit(features[tr], y[tr])
        proba = np.zeros((int(te.sum()), n_classes))
        proba[:, model.classes_] = model.predict_proba(features[te])
        out[test] = proba
    return out

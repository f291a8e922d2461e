"""Synthetic explain stores (xarray, no files) with planted filter groups."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from eegcrp.config import DEFAULT_BANDS


def synthetic_store(n_reps: int = 2, n_subjects: int = 6, n_filters: int = 16,
                    n_groups: int = 4, n_channels: int = 8, n_layer_time: int = 32,
                    n_freq: int = 65, noise: float = 0.15, identical_reps: bool = False,
                    seed: int = 0, transient_rep: int | None = None) -> xr.Dataset:
    """A dataset shaped like ``RelevanceRun.to_dataset()`` whose filter ``f`` of every model
    belongs to planted group ``f % n_groups`` (coordinate ``group``: fold, filter).

    Each filter's activation is its group's template with a random gain, offset and *sign*
    (all not identifiable across models), plus noise; its relevance follows the group's
    relevance template with a random positive gain; its spectral relevance and power follow
    the group's channel x frequency pattern. With ``transient_rep`` the last group's filters
    of that repetition follow a template of their own, seen in no other repetition (a concept
    one training run found and the others did not; ``group`` does not say so).
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n_layer_time)
    n_templates = n_groups + 1  # the last one only for transient_rep
    act_t = np.stack([np.sin(2 * np.pi * (g + 1) * t + g) for g in range(n_templates)])
    rel_t = np.stack([0.3 + np.clip(a, 0, None) for a in act_t])
    spec_t = rng.gamma(1.0, 1.0, (n_templates, n_channels, n_freq)) * rng.choice([-1, 1], (
        n_templates, n_channels, n_freq))
    pow_t = rng.gamma(2.0, 1.0, (n_templates, n_channels, n_freq)) / (1 + np.arange(n_freq))
    classes = ["a", "b"]
    n_folds = n_reps * n_subjects
    shape = (n_folds, len(classes), n_filters)
    group = np.arange(n_filters) % n_groups
    act = np.zeros((*shape, n_layer_time))
    rel = np.zeros_like(act)
    spec = np.zeros((*shape, n_channels, n_freq))
    power = np.zeros_like(spec)
    n_sel = rng.integers(5, 20, shape)
    for i in range(n_folds):
        src = i % n_subjects if identical_reps else i
        r = np.random.default_rng([seed, src])
        for c in range(len(classes)):
            for f in range(n_filters):
                g = (group[f] + c) % n_groups
                if transient_rep is not None and i // n_subjects == transient_rep \
                        and g == n_groups - 1:
                    g = n_groups
                sign, gain, off = r.choice([-1, 1]), r.uniform(0.5, 3), r.normal(0, 2)
                act[i, c, f] = sign * gain * (act_t[g] + noise * r.standard_normal(
                    n_layer_time)) + off
                rel[i, c, f] = r.uniform(0.2, 2) * (rel_t[g] + noise * r.standard_normal(
                    n_layer_time))
                spec[i, c, f] = n_sel[src, c, f] * r.uniform(0.2, 2) * (
                    spec_t[g] + noise * r.standard_normal((n_channels, n_freq)))
                power[i, c, f] = pow_t[g] * np.exp(noise * r.standard_normal(
                    (n_channels, n_freq)))
    if identical_reps:
        n_sel = np.concatenate([n_sel[:n_subjects]] * n_reps)
    total = rel.sum(-1) * n_sel
    reps = np.repeat(np.arange(n_reps), n_subjects)
    subjects = [f"S{s + 1:02d}" for s in range(n_subjects)] * n_reps
    dims = ("fold", "class", "filter")
    pos = rng.standard_normal((n_channels, 3))
    pos = 0.09 * pos / np.linalg.norm(pos, axis=1, keepdims=True)
    return xr.Dataset(
        {"n_selected": (dims, n_sel), "total_relevance": (dims, total),
         "activation_mean": ((*dims, "layer_time"), act),
         "relevance_mean": ((*dims, "layer_time"), rel),
         "spectral_relevance_sum": ((*dims, "channel", "freq"), spec),
         "power_mean": ((*dims, "channel", "freq"), power)},
        coords={"fold": [f"rep{r:02d}_sub-{s}" for r, s in zip(reps, subjects, strict=True)],
                "repetition": ("fold", reps), "subject": ("fold", subjects),
                "class": classes, "filter": np.arange(n_filters),
                "channel": [f"E{k}" for k in range(n_channels)],
                "layer_time": t, "freq": np.linspace(0, 64, n_freq),
                "ch_pos": (("channel", "xyz"), pos), "xyz": ["x", "y", "z"],
                "group": (("class", "filter"), np.stack([(group + c) % n_groups
                                                         for c in range(len(classes))]))},
        attrs={"layer": "b2_conv2", "bands": json.dumps({k: list(v) for k, v in
                                                         DEFAULT_BANDS.items()}),
               "bipolar": 0},
    )

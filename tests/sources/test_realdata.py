"""Exact conservation through the ICA layer on a real recording (eegmat, one subject)."""

from __future__ import annotations

import numpy as np
import pytest

from eegcrp.config import load_config
from eegcrp.preprocessing import prepare
from eegcrp.preprocessing.cache import load_continuous
from eegcrp.sources import fit_subject, ica_relevance
from eegcrp.training import normalize_windows
from tests.helpers import real_folder


@pytest.mark.realdata
def test_conservation_on_a_real_eegmat_subject(tmp_path):
    root = real_folder("eegmat_arithmetic_21ch")
    config = load_config({"output_dir": str(tmp_path), "dataset": {
        "kind": "eegmat", "path": str(root), "subjects": [0, 1]}})
    dataset = prepare(config, progress=False)
    subject = dataset.subjects[0]
    ica = fit_subject(load_continuous(dataset, subject), subject, seed=0)
    assert ica.n_components == ica.meta["rank"] == len(dataset.ch_names) - 1
    x = dataset[subject].get_data()[:40].astype(np.float64)
    z = normalize_windows(x).astype(np.float64)
    rng = np.random.default_rng(0)
    relevance = z * rng.standard_normal(x.shape)  # gradient x input-like heatmaps
    for k in (ica.n_components, 10):  # all components, and 10 (a large residual term)
        out = ica_relevance(x, relevance, ica.unmixing[:k], ica.mixing[:, :k], ica.mean)
        total = relevance.sum(axis=(1, 2))
        assert out.error.max() < 1e-6
        np.testing.assert_allclose(out.component.sum(1) + out.residual, total,
                                   rtol=1e-6, atol=1e-9 * np.abs(relevance).sum())
        np.testing.assert_allclose(out.component_spectrum.sum(-1), out.component, atol=1e-8)
    assert np.abs(out.residual).mean() > 1e-3 * np.abs(out.component).sum(1).mean()

"""Relevance per region x band per class, per subject and across subjects.

**Per subject.** The explain store's DFT relevance of every selected (class, filter,
window) row (``pairs/spectral_relevance``, channel x bin) is summed over each band's bins,
once signed, once of its positive part and once of its absolute value (entry by entry, as
the thesis clipped negatives), and added up per window subject and class:
:class:`ChannelBand` ``values`` (subject, class, measure, channel, band) with the number of
rows ``n_pairs``. "Per class" pools all filters' selected windows of that class.

**Per cell** (class, measure, region ``r``, band ``b``), per subject: ``M`` = the region's
sum, ``T`` = the band's sum over all channels, ``N`` = ``T`` for the positive and absolute
measures and the band's absolute sum for the signed one, ``e = n_r / C`` the share
expected from the region's channel count. Reported:

* ``sum``: ``M`` per window; ``mean``: ``M`` per window, channel of the region and bin of
  the band (the thesis' statistic); ``share`` ``M / N``; ``ratio`` ``share / e``;
* ``excess`` ``(M - e T) / N``: the share above the channel-count expectation, tested
  across subjects (sign flip or Wilcoxon), BH-FDR over the cells of each class and
  measure, with ``d_z``.

**Class difference** (the thesis' contrast, signed here): per subject the difference of
``M / N`` between two classes, tested the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..netcdf import read_netcdf, write_netcdf
from ..relevance.spectral import band_sum
from ..stats import MEASURES
from .layout import RegionLayout
from .stats import fdr_bh, group_test

__all__ = ["MEASURES", "ChannelBand", "cell_table", "channel_band", "class_difference",
           "subject_cells", "subject_table"]



@dataclass
class ChannelBand:
    """Relevance per subject, class, measure, channel and band (sums over windows)."""

    values: np.ndarray  # (S, K, 3, C, B)
    n_pairs: np.ndarray  # (S, K)
    n_bins: np.ndarray  # (B,)
    subjects: list[str]
    classes: list[str]
    channels: list[str]
    bands: dict[str, tuple[float, float]]

    def to_dataset(self) -> xr.Dataset:
        """The sums as a labelled dataset: ``values`` (subject, class, measure, channel,
        band), ``n_pairs`` (subject, class), ``n_bins`` (band), band edges in Hz."""
        dims = ("subject", "class", "measure", "channel", "band")
        return xr.Dataset(
            {"values": (dims, self.values), "n_pairs": (dims[:2], self.n_pairs),
             "n_bins": (("band",), self.n_bins)},
            coords={"subject": list(self.subjects), "class": list(self.classes),
                    "measure": list(MEASURES), "channel": list(self.channels),
                    "band": list(self.bands),
                    "band_low": ("band", [float(v[0]) for v in self.bands.values()]),
                    "band_high": ("band", [float(v[1]) for v in self.bands.values()])})

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dataset` as netCDF-4 (:func:`eegcrp.netcdf.write_netcdf`)."""
        write_netcdf(self.to_dataset(), path)

    @classmethod
    def load(cls, path: str | Path) -> ChannelBand:
        """Read a file written by :meth:`save`."""
        ds = read_netcdf(path)
        if list(ds["measure"].values) != list(MEASURES):
            raise ValueError(f"{path} holds measures {list(ds['measure'].values)}, this "
                             f"version {list(MEASURES)}; re-run `eegcrp regions --overwrite`")
        bands = {str(b): (float(lo), float(hi)) for b, lo, hi in
                 zip(ds["band"].values, ds["band_low"].values, ds["band_high"].values,
                     strict=True)}
        return cls(ds["values"].values, ds["n_pairs"].values, ds["n_bins"].values,
                   *([str(v) for v in ds[k].values] for k in ("subject", "class", "channel")),
                   bands)


def channel_band(run: Any, bands: Mapping[str, tuple[float, float]], batch: int = 256
                 ) -> ChannelBand:
    """Sum every explain fold's selected DFT relevance per subject, class, measure,
    channel and band (see the module docstring).

    Parameters
    ----------
    run : eegcrp.store.RelevanceRun
    bands : mapping
        Band name -> [low, high) in Hz.
    batch : int
        Rows read at once.
    """
    classes, channels = run.classes, list(run.channels.get("names") or run.meta["ch_names"])
    freqs = np.asarray(run.meta["freqs"], np.float64)
    n_bins = np.array([((freqs >= lo) & (freqs < hi)).sum() for lo, hi in bands.values()])
    acc: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    shape = (len(classes), len(MEASURES), len(channels), len(bands))
    for fold in run.folds:
        subject = fold.samples()["subject"].to_numpy().astype(str)
        pairs = fold.pairs()
        cls, sample = pairs["class"].to_numpy(), pairs["sample"].to_numpy()
        for rows, values in fold.pair_batches("spectral_relevance", batch):
            r = values.astype(np.float64)  # (n, C, F)
            parts = [band_sum(v, freqs, bands)[0] for v in (r, r.clip(0), np.abs(r))]
            stacked = np.stack(parts, axis=1)  # (n, 3, C, B)
            subj = subject[sample[rows]]
            for s in np.unique(subj):
                sel = subj == s
                a = acc.setdefault(str(s), np.zeros(shape))
                n = counts.setdefault(str(s), np.zeros(len(classes), np.int64))
                np.add.at(a, cls[rows][sel], stacked[sel])
                np.add.at(n, cls[rows][sel], 1)
    subjects = sorted(acc)
    if not subjects:
        return ChannelBand(np.zeros((0, *shape)), np.zeros((0, len(classes)), np.int64),
                           n_bins, [], classes, channels, dict(bands))
    return ChannelBand(np.stack([acc[s] for s in subjects]),
                       np.stack([counts[s] for s in subjects]), n_bins, subjects, classes,
                       channels, dict(bands))


def _region_sums(cb: ChannelBand, layout: RegionLayout) -> tuple[np.ndarray, np.ndarray]:
    """(S, K, 3, R, B) region sums and (S, K, 3, B) band totals over all channels."""
    member = layout.membership(cb.channels)
    return np.einsum("rc,skmcb->skmrb", member, cb.values), cb.values.sum(axis=3)


def _normaliser(totals: np.ndarray) -> np.ndarray:
    """N per measure: the band's own total (positive, absolute), its absolute total (signed)."""
    norm = totals.copy()
    norm[:, :, 0] = totals[:, :, 2]
    return np.where(norm > 0, norm, np.nan)


def subject_cells(cb: ChannelBand, layout: RegionLayout) -> dict[str, np.ndarray]:
    """Per subject, class, measure, region and band (S, K, 3, R, B): ``sum``, ``mean``,
    ``share`` and ``excess`` (see the module docstring)."""
    sums, totals = _region_sums(cb, layout)
    norm = _normaliser(totals)[:, :, :, None, :]
    n_ch = np.array([len(v) for v in layout.regions.values()], np.float64)
    expected = n_ch / len(cb.channels)
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = np.where(cb.n_pairs > 0, cb.n_pairs, np.nan)[:, :, None, None, None]
        per_window = sums / pairs
        per_entry = per_window / (n_ch[:, None] * np.where(cb.n_bins > 0, cb.n_bins,
                                                           np.nan)[None, :])
        return {"sum": per_window, "mean": per_entry, "share": sums / norm,
                "excess": (sums - expected[:, None] * totals[:, :, :, None, :]) / norm}


def subject_table(cb: ChannelBand, layout: RegionLayout) -> pd.DataFrame:
    """:func:`subject_cells` as a long table: one row per subject, class, measure, region,
    band."""
    cells = subject_cells(cb, layout)
    index = pd.MultiIndex.from_product([cb.subjects, cb.classes, list(MEASURES),
                                        list(layout.regions), list(cb.bands)],
                                       names=["subject", "class", "measure", "region", "band"])
    return pd.DataFrame({k: v.ravel() for k, v in cells.items()}, index=index).reset_index()


def _nanmean0(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN
        return np.nanmean(values, axis=0)


def cell_table(cb: ChannelBand, layout: RegionLayout, *, test: str = "permutation",
               n_permutations: int = 10000, alpha: float = 0.05, seed: int = 0
               ) -> pd.DataFrame:
    """Per class, measure, region and band: the statistics of the module docstring.

    Returns
    -------
    DataFrame
        ``class, measure, region, band, n_channels, expected, sum, mean, share, ratio,
        excess, dz, p, p_fdr, significant, n_subjects``.
    """
    regions, bands = list(layout.regions), list(cb.bands)
    cells = subject_cells(cb, layout)
    excess = cells["excess"]
    n_ch = np.array([len(v) for v in layout.regions.values()], np.float64)
    expected = n_ch / len(cb.channels)
    rows = []
    for k, cls in enumerate(cb.classes):
        for m, measure in enumerate(MEASURES):
            flat = excess[:, k, m].reshape(len(cb.subjects), -1)
            res = group_test(flat, test, n_permutations, seed)
            reject, p_adj = fdr_bh(res["p"], alpha)
            mean = {name: _nanmean0(cells[name][:, k, m]).ravel() if len(cb.subjects) else
                    np.full(flat.shape[1], np.nan) for name in ("sum", "mean", "share")}
            for j, (r, b) in enumerate((r, b) for r in range(len(regions))
                                       for b in range(len(bands))):
                rows.append({
                    "class": cls, "measure": measure, "region": regions[r], "band": bands[b],
                    "n_channels": int(n_ch[r]), "expected": expected[r],
                    "sum": mean["sum"][j], "mean": mean["mean"][j],
                    "share": mean["share"][j], "ratio": mean["share"][j] / expected[r],
                    "excess": res["mean"][j], "dz": res["dz"][j], "p": res["p"][j],
                    "p_fdr": p_adj[j], "significant": bool(reject[j]),
                    "n_subjects": int(res["n_subjects"][j]),
                })
    return pd.DataFrame(rows)


def class_difference(cb: ChannelBand, layout: RegionLayout, *, test: str = "permutation",
                     n_permutations: int = 10000, alpha: float = 0.05, seed: int = 0
                     ) -> pd.DataFrame:
    """Per pair of classes, measure, region and band: the difference of ``M / N`` between
    the classes across subjects (``class_a`` minus ``class_b``), tested and FDR-corrected
    over the cells of each pair and measure."""
    regions, bands = list(layout.regions), list(cb.bands)
    share = subject_cells(cb, layout)["share"]
    rows = []
    for a, b in combinations(range(len(cb.classes)), 2):
        for m, measure in enumerate(MEASURES):
            diff = (share[:, a, m] - share[:, b, m]).reshape(len(cb.subjects), -1)
            res = group_test(diff, test, n_permutations, seed)
            reject, p_adj = fdr_bh(res["p"], alpha)
            for j, (r, bb) in enumerate((r, bb) for r in range(len(regions))
                                        for bb in range(len(bands))):
                rows.append({"class_a": cb.classes[a], "class_b": cb.classes[b],
                             "measure": measure, "region": regions[r], "band": bands[bb],
                             "difference": res["mean"][j], "dz": res["dz"][j],
                             "p": res["p"][j], "p_fdr": p_adj[j],
                             "significant": bool(reject[j]),
                             "n_subjects": int(res["n_subjects"][j])})
    return pd.DataFrame(rows)

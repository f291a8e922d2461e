"""Pipeline C, part 2: functional grouping of relevance by scalp region x band.

:mod:`.layout` forms regions (automatic from positions, or presets), :mod:`.cells`
aggregates the explain store's DFT relevance per region x band and class and tests it
against the share expected from the region's channel count, :mod:`.stats` holds the group
tests. Results of the ``regions`` stage are read with :func:`load_regions`.

Layout of ``<output_dir>/regions/``:

==========================  ===============================================================
``layout.json``             regions with their channels; empty, small, merged regions;
                            unassigned channels; preset channels missing from the data
``channel_band.nc``         relevance per subject, class, measure, channel, band
                            (:class:`.cells.ChannelBand`)
``subject_cells.csv``       per subject, class, measure, region, band: sum, mean, share,
                            excess (the values the group tests use)
``cells.csv``               per class, measure, region, band: sum, mean, share, expected
                            share, ratio, excess, d_z, p, FDR-adjusted p, significance
``class_difference.csv``    per class pair, measure, region, band: difference of shares,
                            d_z, p, FDR-adjusted p, significance
==========================  ===============================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .cells import ChannelBand, cell_table, channel_band, class_difference
from .layout import RegionLayout, RegionsError, auto_layout, make_layout, preset_layout
from .stats import fdr_bh, group_test, sign_flip_test, wilcoxon_test

__all__ = [
    "ChannelBand",
    "RegionLayout",
    "RegionsError",
    "RegionsRun",
    "auto_layout",
    "cell_table",
    "channel_band",
    "class_difference",
    "fdr_bh",
    "group_test",
    "load_regions",
    "make_layout",
    "preset_layout",
    "sign_flip_test",
    "wilcoxon_test",
]


@dataclass
class RegionsRun:
    """The finished results of a ``regions`` stage."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def skipped(self) -> str | None:
        return self.manifest.get("extra", {}).get("skipped")

    @property
    def layout(self) -> RegionLayout:
        return RegionLayout.from_dict(json.loads((self.folder / "layout.json").read_text()))

    @property
    def cells(self) -> pd.DataFrame:
        return pd.read_csv(self.folder / "cells.csv")

    @property
    def subject_cells(self) -> pd.DataFrame:
        return pd.read_csv(self.folder / "subject_cells.csv")

    @property
    def class_difference(self) -> pd.DataFrame:
        return pd.read_csv(self.folder / "class_difference.csv")

    @property
    def channel_band(self) -> ChannelBand:
        return ChannelBand.load(self.folder / "channel_band.nc")


def load_regions(run_dir: str | Path) -> RegionsRun:
    """Open the results of the ``regions`` stage (``<output_dir>/regions`` or
    ``output_dir``).

    Raises
    ------
    StoreError
        When the folder holds no finished regions stage.
    """
    from ..results import open_stage

    return RegionsRun(*open_stage(run_dir, "regions"))

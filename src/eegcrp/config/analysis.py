"""Config sections of the analysis stages that read the explain store: ``sources``
(ICA + ICLabel, pipeline C) and ``regions`` (relevance per scalp region x band)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Section as _Section
from .stages import ParallelSection

__all__ = ["RegionsConfig", "SourcesConfig"]


class SourcesConfig(ParallelSection):
    """Relevance of independent components (see :mod:`eegcrp.stages.sources`).

    Defaults: picard with ``ortho=False, extended=True`` (the extended-infomax solution
    ICLabel was trained on, several times faster than MNE's infomax), as many components as
    the data have rank (CAR removes one; nothing is left out but numerical noise), fitted
    on the whole continuous recording (more samples than the trials alone), 2000 bootstrap
    resamples of subjects for 95 % intervals.
    """

    enabled: bool = Field(
        True, description="Run the stage; false = record it as skipped (e.g. bipolar or "
        "3-channel data, where ICA and ICLabel do not apply).",
    )
    method: Literal["picard", "infomax"] = Field(
        "picard", description="'picard' = picard(ortho=False, extended=True), 'infomax' = "
        "MNE's extended infomax (same model, slower).",
    )
    n_components: Literal["rank"] | int | float = Field(
        "rank", description="'rank' = the data's rank (CAR removes one), an int = that many "
        "components, a float in (0, 1) = components explaining that share of the variance.",
    )
    data: Literal["continuous", "trials"] = Field(
        "continuous", description="Fit on the whole filtered continuous recording or on its "
        "trials only.",
    )
    band: tuple[float, float] = Field(
        (1.0, 100.0), description="Band (Hz) the ICA data are filtered to where the cached "
        "data are wider (ICLabel expects 1-100 Hz); the cached band is never widened.",
    )
    max_iter: int = Field(1000, ge=1, description="ICA iterations; not converging in as many "
                          "marks the subject as failed.")
    min_samples_factor: float = Field(
        20.0, ge=0, description="Warn when the ICA data have fewer than this x n_components² "
        "samples (the usual rule of thumb).",
    )
    n_boot: int = Field(2000, ge=100, description="Bootstrap resamples of subjects.")
    ci: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")
    seed: int | None = Field(
        None, ge=0, description="Seed of the ICA and the bootstrap; null = the study's seed.",
    )
    iclabel_min_channels: int = Field(
        16, ge=1, description="Fewest channels for which the brain share is stated as a "
        "finding: ICLabel classifies a topography interpolated from the channels, which few "
        "channels resolve poorly. Below it the share is reported as not interpretable.",
    )

    @field_validator("n_components")
    @classmethod
    def _n_components(cls, value: str | int | float) -> str | int | float:
        if isinstance(value, bool):
            raise ValueError("n_components must be 'rank', an int or a float in (0, 1)")
        if isinstance(value, float) and value.is_integer() and value >= 1:
            value = int(value)
        if isinstance(value, int) and value < 2:
            raise ValueError(f"n_components {value}: ICA needs at least 2 components; use "
                             "'rank' (the default) or an int >= 2")
        if isinstance(value, float) and not 0 < value < 1:
            raise ValueError(f"n_components {value}: a float is a share of the variance in "
                             "(0, 1), e.g. 0.99; or use 'rank' / an int")
        return value

    @field_validator("band")
    @classmethod
    def _band(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 <= low < high:
            raise ValueError(f"band [{low}, {high}] must satisfy 0 <= low < high (Hz); "
                             "ICLabel expects [1, 100]")
        return value


class RegionsConfig(_Section):
    """Relevance per scalp region x band (see :mod:`eegcrp.stages.regions`).

    Defaults: regions from the channels' 3-D positions (any montage), none merged (every
    region with at least one channel is kept, small ones are flagged), a two-sided
    sign-flip permutation test of each region's relevance share against its channel share
    across subjects (exact up to 2^13 subjects' sign patterns, else 10 000 random flips),
    Benjamini-Hochberg FDR at 0.05 over the region x band cells of each class and measure.
    """

    enabled: bool = Field(True, description="Run the stage; false = record it as skipped "
                          "(bipolar data have no scalp regions).")
    layout: Literal["auto", "thesis"] | dict[str, list[str]] = Field(
        "auto", description="'auto' = lobe x hemisphere from the 3-D positions; 'thesis' = "
        "the thesis' channel lists for the dataset's task; or {region: [channels]}.",
    )
    min_channels: int = Field(
        1, ge=1, description="A lobe x side region with fewer channels is merged into one "
        "region per lobe (left, midline and right together); still smaller ones are kept and "
        "reported.",
    )
    test: Literal["permutation", "wilcoxon"] = Field(
        "permutation", description="Group test across subjects: sign-flip permutation of "
        "the mean, or Wilcoxon signed-rank.",
    )
    n_permutations: int = Field(10000, ge=100, description="Random sign flips when the "
                                "exact enumeration is too large.")
    alpha: float = Field(0.05, gt=0, lt=1, description="FDR level (Benjamini-Hochberg).")
    seed: int | None = Field(None, ge=0, description="Seed of the permutations; null = the "
                             "study's seed.")

    @field_validator("layout")
    @classmethod
    def _layout(cls, value: str | dict[str, list[str]]) -> str | dict[str, list[str]]:
        if isinstance(value, dict):
            if not value:
                raise ValueError("layout is an empty mapping; name regions with channel "
                                 "lists, e.g. {left_motor: [C3, CP3]}, or use 'auto'")
            empty = [k for k, v in value.items() if not v]
            if empty:
                raise ValueError(f"layout regions {empty} have no channels; list at least one")
        return value

"""HTML tables of the report pages (Bootstrap's small table, as MNE Report styles it)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pandas as pd

__all__ = ["html_table"]


def html_table(frame: pd.DataFrame, cell: Callable[[Any], str] | None = None) -> str:
    """``frame`` as an HTML table; every header and cell escaped (``cell`` formats a value
    into text first, default ``str``)."""
    fmt = cell or str
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table class='table table-sm'><tr>{head}</tr>{body}</table>"

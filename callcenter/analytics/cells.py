"""A table's values as the text shown on the page and written to the CSV, in one place."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.analytics.figures import Table

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def cells(
    table: Table, t: Callable[..., str], agents: Mapping[int, str], zone: ZoneInfo
) -> list[list[str]]:
    def show(kind: str, value: Any) -> str:
        if value is None or value == "":
            return "—" if kind != "channel" else t("analytics.all")
        if kind == "seconds":
            return duration(value)
        if kind == "percent":
            return f"{value:.1f}%"
        if kind in ("channel", "direction", "pop"):
            return t(f"analytics.{kind}_{value}")
        if kind == "agent":
            return agents.get(value, t("analytics.nobody") if value == 0 else f"#{value}")
        if kind == "hour":
            return f"{value:02d}:00"
        if kind == "when" and isinstance(value, datetime):
            return value.astimezone(zone).strftime("%d.%m.%Y %H:%M")
        return str(value)

    return [[show(k, v) for k, v in zip(table.kinds, row, strict=True)] for row in table.rows]


def safe_cell(text: str) -> str:
    """A spreadsheet reads a cell starting with = + - @ as a formula; quote it as text."""
    return "'" + text if text.startswith(_FORMULA) else text


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(c) for c in row] for row in rows)
    return out.getvalue()

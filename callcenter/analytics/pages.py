"""Which figures and charts make up each analytics page."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.analytics import charts
from callcenter.analytics.audit import audit
from callcenter.analytics.figures import (
    CHANNELS,
    REPEAT_ALARM,
    REPEAT_GOAL,
    Filters,
    Table,
    nps,
    overview,
    repeat_contacts,
    transitions,
)
from callcenter.analytics.refresh import Calendar

Translate = Callable[..., str]
Loader = Callable[[AsyncSession, Calendar, Filters, int], Awaitable[list[Table]]]


async def _overview(db: AsyncSession, cal: Calendar, f: Filters, seed: int) -> list[Table]:
    return await overview(db, f)


async def _repeat(db: AsyncSession, cal: Calendar, f: Filters, seed: int) -> list[Table]:
    return await repeat_contacts(db, f)


async def _nps(db: AsyncSession, cal: Calendar, f: Filters, seed: int) -> list[Table]:
    return await nps(db, f)


async def _transitions(db: AsyncSession, cal: Calendar, f: Filters, seed: int) -> list[Table]:
    return await transitions(db, f)


async def _audit(db: AsyncSession, cal: Calendar, f: Filters, seed: int) -> list[Table]:
    return await audit(db, cal, f, random.Random(seed))


@dataclass(frozen=True)
class Page:
    name: str
    load: Loader
    applies: tuple[str, ...]
    """The filters besides the dates that narrow this page's figures."""


PAGES = {
    p.name: p
    for p in (
        Page("overview", _overview, ("channel", "queue", "agent")),
        Page("repeat", _repeat, ("channel", "agent")),
        Page("nps", _nps, ("channel", "agent")),
        Page("transitions", _transitions, ("channel",)),
        Page("audit", _audit, ()),
    )
}


def _column(table: Table, n: int, label: Callable[[list[object]], str]) -> list:  # type: ignore[type-arg]
    return [(label(row), row[n]) for row in table.rows]


def page_charts(name: str, tables: list[Table], t: Translate) -> list[Markup]:
    by = {table.name: table for table in tables}

    def channel(row: list[object]) -> str:
        return t(f"analytics.channel_{row[0]}") if row[0] else t("analytics.all")

    if name == "overview":
        service = by["service"]
        return [
            charts.bars(
                t("analytics.frt_median_chart"),
                _column(by["frt"], 4, channel),
                unit=" " + t("analytics.s"),
            ),
            charts.bars(
                t("analytics.resolution_median_chart"),
                _column(by["resolution"], 4, channel),
                unit=" " + t("analytics.s"),
            ),
            charts.bars(t("analytics.volume_channel"), _column(by["volume_channel"], 1, channel)),
            charts.bars(
                t("analytics.volume_intent"),
                _column(by["volume_intent"], 1, lambda r: str(r[0] or "—")),
            ),
            charts.bars(
                t("analytics.sl_chart"),
                _column(service, 5, lambda r: f"{r[0]} {r[1]:02d}:00"),
                unit="%",
            ),
        ]
    if name == "repeat":
        lines = [
            (REPEAT_GOAL, "goal", t("analytics.goal")),
            (REPEAT_ALARM, "alarm", t("analytics.alarm")),
        ]
        return [
            charts.bars(
                t("analytics.repeat_chart"),
                _column(by["repeat_day"], 3, lambda r: str(r[0])),
                unit="%",
                lines=lines,
                alarm=REPEAT_ALARM,
            )
        ]
    if name == "nps":
        return [charts.bars(t("analytics.nps_chart"), _column(by["nps_channel"], 5, channel))]
    if name == "transitions":
        rows = by["transitions"].rows
        names = {c: t(f"analytics.channel_{c}") for c in CHANNELS}
        return [
            charts.matrix(t(title), CHANNELS, names, {(r[0], r[1]): r[n] for r in rows})
            for title, n in (("analytics.transitions_chart", 2), ("analytics.no_answer_chart", 3))
        ]
    return []

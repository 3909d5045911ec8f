"""Analytics page figures over a large database, beside a baseline COUNT(*) of interactions.

For each page, the time to read its figures (every query the page makes, plus the charts and
the table cells) for the default range (the last 30 days) and for every day in the database;
the baseline is ``SELECT count(*) FROM interactions``. It also times rebuilding today's rollup
rows, which is what a refresh redoes as contacts arrive (only the rollup tables are written).
Goal from the supervisor issue: each page under 500 ms over 10,000,000 interactions in
PostgreSQL. ``--build`` first brings the rollups up to date (the first run builds them all;
printed separately). The load average is printed with the figures. ``--page`` (repeatable)
times only the pages named.

NPS reads the survey answers themselves; ``callcenter seed`` rates about 30 % of solved
tickets. To time it without reseeding the large database, seed a smaller one, e.g.:

    createdb -h 127.0.0.1 -U postgres cc_bench_nps
    CALLCENTER_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/cc_bench_nps \\
        sh -c 'callcenter migrate && callcenter seed --customers 100000 --quiet'

    .venv/bin/python bench/analytics.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/cc_bench [--build] [--page nps]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from _common import load
from sqlalchemy import func, select, text

from callcenter.analytics.cells import cells
from callcenter.analytics.figures import DEFAULT_DAYS, Filters
from callcenter.analytics.models import ContactRollup, TicketFact, TransitionRollup
from callcenter.analytics.pages import PAGES, page_charts
from callcenter.analytics.refresh import (
    Calendar,
    Refresher,
    rebuild_contacts_day,
    rebuild_ticket_day,
    rebuild_transitions_day,
)
from callcenter.automation.models import SurveyAnswer
from callcenter.db import create_engine, session_factory
from callcenter.web.i18n import translator


async def timed(run: Callable[[], Awaitable[Any]], rounds: int) -> tuple[float, float]:
    """Median and worst milliseconds over ``rounds`` (after one warm-up)."""
    await run()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


async def main(url: str, build: bool, rounds: int, timezone: str, only: list[str]) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    zone = ZoneInfo(timezone)
    calendar = Calendar(zone)
    t = translator("ru")
    try:
        if build:
            refresher = Refresher(sessions, timezone)
            started = time.perf_counter()
            await refresher.refresh()
            print(
                f"refresh (builds everything the first time): {time.perf_counter() - started:.1f} s"
            )
            started = time.perf_counter()
            await refresher.refresh()
            print(f"refresh with nothing new: {(time.perf_counter() - started) * 1000:.0f} ms")
            started = time.perf_counter()
            await Refresher(sessions, timezone).refresh()
            print(f"after a restart: {(time.perf_counter() - started) * 1000:.0f} ms")
        async with sessions() as db:
            interactions = await db.scalar(text("SELECT count(*) FROM interactions"))
            first, last = (
                await db.execute(select(func.min(TicketFact.day), func.max(TicketFact.day)))
            ).one()
            for table in (ContactRollup, TransitionRollup, TicketFact, SurveyAnswer):
                rows = await db.scalar(select(func.count()).select_from(table))
                print(f"{table.__tablename__}: {rows:,} rows")
        print(f"interactions: {interactions:,}; days {first} .. {last}; {load()}")

        # What a refresh redoes when today's contacts arrive: today's rows, rebuilt whole.
        today = datetime.now(zone).date()
        for work in (rebuild_contacts_day, rebuild_transitions_day, rebuild_ticket_day):
            started = time.perf_counter()
            async with sessions() as db, db.begin():
                await work(db, calendar, today)
            ms = (time.perf_counter() - started) * 1000
            print(f"{work.__name__ + ' (today)':<34} {ms:8.1f} ms")

        async def baseline() -> None:
            async with sessions() as db:
                await db.scalar(text("SELECT count(*) FROM interactions"))

        median, worst = await timed(baseline, rounds)
        print(f"{'baseline COUNT(*) interactions':<34} {median:8.1f} ms median {worst:8.1f} ms max")
        default = Filters.parse({}, today)
        ranges = {f"last {DEFAULT_DAYS} days": default, "every day": Filters(first, last)}
        for label, filters in ranges.items():
            for page in (p for p in PAGES.values() if not only or p.name in only):

                async def show(page=page, filters=filters) -> None:  # type: ignore[no-untyped-def]
                    async with sessions() as db:
                        tables = await page.load(db, calendar, filters, 1)
                    page_charts(page.name, tables, t)
                    for table in tables:
                        cells(table, t, {}, zone)

                median, worst = await timed(show, rounds)
                name = f"{page.name} ({label})"
                print(f"{name:<34} {median:8.1f} ms median {worst:8.1f} ms max")
        print(load())
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--build", action="store_true", help="bring the rollups up to date first")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timezone", default="Europe/Moscow")
    parser.add_argument("--page", action="append", choices=sorted(PAGES), default=[])
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.build, args.rounds, args.timezone, args.page))

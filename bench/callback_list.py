"""The live callback list's costs: the new-callback check every process makes every 2 s and
the rows the page fetches on each change, over a table of many finished callbacks.

    .venv/bin/python bench/callback_list.py [DATABASE_URL]   (default: a temporary SQLite)
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from _common import load, mean_seconds, migrated_database
from sqlalchemy import insert

from callcenter.automation.callback_watch import NewCallbacks
from callcenter.automation.callbacks import recent_callbacks
from callcenter.bus import Bus
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.db import unit_of_work
from callcenter.domain.customers import create_customer

ROWS = 100_000
CHECKS = 500
LISTS = 50


async def bench(url: str | None) -> None:
    async with migrated_database(url) as (engine, sessions):
        now = datetime.now(UTC)
        async with unit_of_work(sessions) as session:
            customer = await create_customer(session, "Иван Петров")
        rows = [
            {
                "queue": "support",
                "customer_id": customer.id,
                "phone": "+79161234567",
                "channel": "call",
                "status": CallbackStatus.DONE if n % 10 else CallbackStatus.REQUESTED,
                "created_at": now - timedelta(minutes=n),
                "due_at": now - timedelta(minutes=n),
                "last_attempt_at": now - timedelta(minutes=n),
                "note": "",
            }
            for n in range(ROWS)
        ]
        async with unit_of_work(sessions) as session:
            for start in range(0, ROWS, 5000):
                await session.execute(insert(CallbackRequest), rows[start : start + 5000])
        watch = NewCallbacks(sessions, Bus())
        await watch.check()
        check = await mean_seconds(watch.check, CHECKS)
        name = engine.dialect.name
        print(f"{name}: new-callback check {check * 1e3:.2f} ms over {ROWS} callbacks ({load()})")

        async def read_list() -> None:
            async with sessions() as session:
                await recent_callbacks(session)

        listed = await mean_seconds(read_list, LISTS)
        print(f"{name}: the list's rows read in {listed * 1e3:.1f} ms ({load()})")


if __name__ == "__main__":
    asyncio.run(bench(sys.argv[1] if len(sys.argv) > 1 else None))

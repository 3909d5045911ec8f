"""What the CRM catch-up scan costs, on a local SQLite database with one webhook subscription to
every event and a CRM configured: N email tickets (two messages each) committed with no bus
handler run, then
  - a cold pass: everything queued by the scan (what a crash right after the commits needs),
  - a steady pass of the same scan: rows already handled (by it or this process's bus
    handlers) are skipped,
  - a replay pass by a fresh scan (a restart): every row read, nothing queued twice.
Prints seconds per pass and rows per second, with the load average beside each figure.

    .venv/bin/python bench/crm_catchup.py [--tickets 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from _common import load, migrated_database
from sqlalchemy import func, select

from callcenter.crm.catchup import CatchUp
from callcenter.crm.feed import Feed
from callcenter.crm.models import WebhookSubscription
from callcenter.crm.webhooks import EVENTS
from callcenter.models import Outbox

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.automation.helpers import email_message, receive


async def main(tickets: int) -> None:
    async with migrated_database() as (_, sessions):
        async with sessions() as session, session.begin():
            session.add(WebhookSubscription(url="https://h.example/", secret="s", events=EVENTS))
        feed = Feed(sessions, crm=True)
        await CatchUp(sessions, feed).run_once()  # the checkpoints, before the traffic
        for i in range(tickets):
            address = f"client{i}@example.ru"
            await receive(sessions, email_message("Где заказ?", f"a{i}@x", address=address))
            await receive(sessions, email_message("Жду ответа", f"b{i}@x", address=address))

        async def queued() -> int:
            async with sessions() as session:
                return await session.scalar(select(func.count()).select_from(Outbox)) or 0

        rows = tickets * 3  # a ticket and two messages
        scan = CatchUp(sessions, feed, batch=rows + 1)
        for name, catchup in (
            ("cold", scan),
            ("steady", scan),
            ("replay", CatchUp(sessions, Feed(sessions, crm=True), batch=rows + 1)),
        ):
            started = time.perf_counter()
            handled = await catchup.run_once()
            took = time.perf_counter() - started
            rate = f"{handled / took:8.0f} rows/s" if handled else "     (none handled)"
            print(
                f"{name:<7} pass: {took:7.3f} s, {handled:6d} rows handled {rate}, "
                f"{await queued():6d} outbox rows ({load()})"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000)
    asyncio.run(main(parser.parse_args().tickets))

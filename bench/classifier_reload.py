"""What following the admins' classifier dictionary costs a process.

Prints the per-check cost of the version query (run every few seconds by every process), the
time from a save to the new classifier in use (load + compile off the event loop), and the
time to claim-or-find-nothing for the callback dialler's idle round, with the load average.

Usage: .venv/bin/python bench/classifier_reload.py [DATABASE_URL]   (default: a temp SQLite)
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

from _common import load, mean_seconds, migrated_database

from callcenter.automation.callbacks import due_queues
from callcenter.classify import default_patterns
from callcenter.classify.live import LiveDictionary
from callcenter.classify.store import save_dictionary, stored_version
from callcenter.db import unit_of_work

CHECKS = 500
RELOADS = 5


async def bench(url: str | None) -> None:
    async with migrated_database(url) as (engine, sessions):

        async def version_check() -> None:
            async with sessions() as session:
                await stored_version(session)

        check = await mean_seconds(version_check, CHECKS)
        name = engine.dialect.name
        print(f"{name}: version check {check * 1e3:.2f} ms ({load()})")

        live = LiveDictionary(sessions, install=None)
        reloads = []
        for n in range(RELOADS):
            patterns = default_patterns()
            patterns["intents"]["warranty"] = {
                "ru": [f"гарантийный ремонт{'' if n % 2 else ' срок'}"]
            }
            async with unit_of_work(sessions) as session:
                await save_dictionary(session, patterns, actor=None)
            started = time.perf_counter()
            assert await live.refresh()
            reloads.append(time.perf_counter() - started)
        best, worst = min(reloads), max(reloads)
        print(
            f"{name}: saved dictionary in use after {best:.2f}-{worst:.2f} s "
            f"of load+compile ({load()})"
        )

        async def idle_round() -> None:
            async with sessions() as session:
                await due_queues(session, datetime.now(UTC))

        idle = await mean_seconds(idle_round, CHECKS)
        print(f"{name}: idle dialler round {idle * 1e3:.2f} ms ({load()})")


if __name__ == "__main__":
    asyncio.run(bench(sys.argv[1] if len(sys.argv) > 1 else None))

"""``callcenter worker telegram|email``: one channel worker alone, until SIGINT or SIGTERM.

Several copies may run at once: inbound deduplication and the outbox's row leases make
that safe.
"""

from __future__ import annotations

import asyncio
import signal

from callcenter.bus import Bus
from callcenter.classify.live import LiveDictionary
from callcenter.config import Settings
from callcenter.db import create_engine, session_factory


async def _run(settings: Settings, kind: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    dictionary = asyncio.create_task(LiveDictionary(sessions).run(stop))  # admins' patterns
    try:
        if kind == "telegram":
            from callcenter.channels.telegram.worker import run_telegram_worker

            await run_telegram_worker(settings, sessions, Bus(), stop)
        else:
            from callcenter.channels.email.worker import run_email_worker

            await run_email_worker(settings, sessions, Bus(), stop)
    finally:
        stop.set()
        await dictionary
        await engine.dispose()


def run_worker(settings: Settings, kind: str) -> None:
    asyncio.run(_run(settings, kind))

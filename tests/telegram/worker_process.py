"""The Telegram worker as its own process, for the kill-and-restart test.

Configured by the ``CALLCENTER_*`` environment; stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from callcenter.bus import Bus
from callcenter.channels.telegram.worker import run_telegram_worker
from callcenter.config import load_settings
from callcenter.db import create_engine, session_factory


async def main() -> None:
    settings = load_settings()
    engine = create_engine(settings.resolved_database_url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await run_telegram_worker(settings, session_factory(engine), Bus(), stop)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())

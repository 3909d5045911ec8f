"""A periodic database probe, so /status shows the database's state between page loads."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter import health
from callcenter.runtime import Component

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0


async def check_database(engine: AsyncEngine, timeout: float = PROBE_TIMEOUT) -> bool:
    """Run ``SELECT 1`` and report the outcome as the ``database`` component."""
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # whatever went wrong is what /status must show
        error = f"{type(exc).__name__}: {exc}" if str(exc) else f"no answer within {timeout:g} s"
        log.warning("database probe failed: %s", error)
        health.report_failure("database", error)
        return False
    health.report_ok("database")
    return True


async def probe_database(engine: AsyncEngine, stop: asyncio.Event, every: float = 10) -> None:
    """Check the database every ``every`` seconds until ``stop``."""
    while not stop.is_set():
        await check_database(engine)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def database_probe(engine: AsyncEngine, every: float = 10) -> Component:
    """The probe as a supervised component of ``callcenter serve``."""

    async def run(stop: asyncio.Event) -> None:
        await probe_database(engine, stop, every)

    return Component("database-probe", run)

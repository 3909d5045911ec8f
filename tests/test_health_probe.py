"""The database probe marks the database failing with its error, and ok again once it is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcenter import health
from callcenter.db import create_engine
from callcenter.health import State
from callcenter.health_probe import probe_database


def database_health() -> health.ComponentHealth:
    return next(c for c in health.registry.snapshot() if c.name == "database")


async def wait_for_state(state: State, timeout: float = 5.0) -> health.ComponentHealth:
    async with asyncio.timeout(timeout):
        while database_health().state is not state:
            await asyncio.sleep(0.02)
    return database_health()


async def test_the_probe_reports_a_missing_database_and_its_recovery(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet"
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'callcenter.db'}")
    folder.rmdir()  # create_engine made the folder; the disk is gone
    stop = asyncio.Event()
    probe = asyncio.create_task(probe_database(engine, stop, every=0.05))
    try:
        failing = await wait_for_state(State.FAILING)
        assert "unable to open database file" in failing.last_error

        folder.mkdir()  # the disk is back
        ok = await wait_for_state(State.OK)
        assert ok.last_error == failing.last_error  # the last error stays visible
        assert ok.since is not None and ok.since >= failing.last_error_at
    finally:
        stop.set()
        await asyncio.wait_for(probe, 2)
        await engine.dispose()

"""Scaffolding the database benches share: a migrated database (a temporary SQLite file unless a
URL is given), the load average printed beside each figure, and the mean time of a repeated call.

Imported as ``_common``: a bench runs as ``python bench/<name>.py``, which puts bench/ first on
the import path."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async


@asynccontextmanager
async def migrated_database(
    url: str | None = None,
) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    """The database at `url` (or a fresh SQLite file removed afterwards), migrated, as an engine
    (disposed afterwards) and its session factory."""
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            yield engine, session_factory(engine)
        finally:
            await engine.dispose()


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


async def mean_seconds(run: Callable[[], Awaitable[Any]], rounds: int) -> float:
    """Seconds per call of `run`, over `rounds` calls in a row."""
    started = time.perf_counter()
    for _ in range(rounds):
        await run()
    return (time.perf_counter() - started) / rounds

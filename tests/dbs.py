"""Throw-away databases for tests: a SQLite file, or a fresh database on the machine's PostgreSQL.

PostgreSQL is a required service: when it cannot be reached the test fails with a message
saying how to start it; it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async

PG_ADMIN_DSN = os.environ.get("CALLCENTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_START_HINT = (
    "PostgreSQL is not reachable at {dsn} ({error}); start it with "
    "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'"
)


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(PG_START_HINT.format(dsn=PG_ADMIN_DSN, error=exc)) from exc


@asynccontextmanager
async def postgres_database(prefix: str = "cc_test") -> AsyncIterator[str]:
    """Create a fresh PostgreSQL database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def sqlite_database(directory: Path) -> AsyncIterator[str]:
    """A SQLite file in ``directory`` (removed with the pytest temp dir)."""
    yield f"sqlite+aiosqlite:///{directory / f'cc_{uuid.uuid4().hex[:8]}.db'}"


@asynccontextmanager
async def database(backend: str, directory: Path) -> AsyncIterator[str]:
    if backend == "postgresql":
        async with postgres_database() as url:
            yield url
    else:
        async with sqlite_database(directory) as url:
            yield url


@pytest.fixture(name="database")
async def migrated_postgres(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    """The `database` fixture of the suites that run the product's own processes (reliability,
    scale; their conftests import it): a fresh migrated PostgreSQL database named after the test
    module, dropped afterwards. Its URL, for the processes, and a session factory."""
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    async with postgres_database(f"cc_{module}") as url:
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            yield url, session_factory(engine)
        finally:
            await engine.dispose()

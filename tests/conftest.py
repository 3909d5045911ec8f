"""Shared fixtures: every database test runs on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import settings
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.schema import metadata
from tests.dbs import database

BACKENDS = ["sqlite", "postgresql"]

# Per-example deadlines measure the machine's load, not our code: CI runs on 2 shared cores.
settings.register_profile("callcenter", deadline=None)
settings.load_profile("callcenter")


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> AsyncIterator[str]:
    """A migrated database per backend, shared by the session's tests."""
    async with database(request.param, tmp_path_factory.mktemp("db")) as url:
        await upgrade_async(url)
        yield url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on a database that is emptied after each test."""
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        async with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(delete(table))
        await engine.dispose()


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as db_session:
        yield db_session

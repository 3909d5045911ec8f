"""The web tests' signed-in visitors, for the event stream checks, and a migrated PostgreSQL
database of the test's own."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from tests.dbs import postgres_database
from tests.web.conftest import app, server, signed_in, staff, visitor  # noqa: F401  (fixtures)


@pytest.fixture
async def database(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    """A fresh migrated PostgreSQL database (named after the test module, dropped afterwards):
    its URL, for the product's processes, and a session factory."""
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    async with postgres_database(f"cc_{module}") as url:
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            yield url, session_factory(engine)
        finally:
            await engine.dispose()

"""The schema exists only through Alembic, and the migrations match the models."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from callcenter.db import create_engine
from callcenter.migrate import downgrade_async, upgrade_async
from callcenter.schema import metadata
from tests.conftest import BACKENDS
from tests.dbs import database


def _schema_diff(connection) -> list:  # type: ignore[no-untyped-def]
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


def _tables(connection) -> set[str]:  # type: ignore[no-untyped-def]
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_downgrade_upgrade_and_no_autogenerate_diff(
    backend: str, tmp_path: Path
) -> None:
    async with database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade_async(url)
            async with engine.connect() as conn:
                assert await conn.run_sync(_tables) == set(metadata.tables)
            await downgrade_async(url)
            async with engine.connect() as conn:
                assert await conn.run_sync(_tables) == set()
            await upgrade_async(url)
            async with engine.connect() as conn:
                assert await conn.run_sync(_schema_diff) == []
        finally:
            await engine.dispose()

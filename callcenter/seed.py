"""``callcenter seed``: bulk-load demo data.

On PostgreSQL rows go in with COPY; a second process generates the next batch while the
current one is copied, and for large loads the secondary indexes are built once at the end
instead of being updated row by row (the generator makes unique values by construction).
SQLite gets batched INSERTs.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from callcenter import seed_data as data
from callcenter.automation.models import SurveyAnswer
from callcenter.models import Call, Customer, Identity, Interaction, OrderRef, Ticket

TABLES: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("customers", Customer, data.CUSTOMER_COLUMNS),
    ("identities", Identity, data.IDENTITY_COLUMNS),
    ("tickets", Ticket, data.TICKET_COLUMNS),
    ("interactions", Interaction, data.INTERACTION_COLUMNS),
    ("calls", Call, data.CALL_COLUMNS),
    ("order_refs", OrderRef, data.ORDER_REF_COLUMNS),
    ("survey_answers", SurveyAnswer, data.SURVEY_ANSWER_COLUMNS),
)
REBUILD_INDEXES_FROM = 50_000
"""From this many customers on, building the secondary indexes once at the end is faster."""


@dataclass(frozen=True)
class SeedReport:
    customers: int
    interactions: int
    seconds: float


_worker: tuple[data.Generator, data.NextIds] | None = None


def _start_worker(seed_value: int, now: datetime, ids: data.NextIds) -> None:
    global _worker
    _worker = (data.Generator(seed=seed_value, now=now), ids)


def _generate(count: int) -> data.Batch:
    assert _worker is not None
    generator, ids = _worker
    return generator.batch(ids, count)


async def _next_ids(conn: AsyncConnection) -> data.NextIds:
    async def after(model: Any) -> int:
        return int(await conn.scalar(select(func.coalesce(func.max(model.id), 0)))) + 1

    return data.NextIds(
        customer=await after(Customer),
        identity=await after(Identity),
        ticket=await after(Ticket),
        interaction=await after(Interaction),
        order_ref=await after(OrderRef),
        survey_answer=await after(SurveyAnswer),
    )


async def _copy(conn: AsyncConnection, batch: data.Batch) -> None:
    raw = (await conn.get_raw_connection()).driver_connection
    for table, _, columns in TABLES:
        rows = getattr(batch, table)
        if rows:
            await raw.copy_records_to_table(table, records=rows, columns=columns)


async def _insert(conn: AsyncConnection, batch: data.Batch) -> None:
    for table, model, columns in TABLES:
        rows = getattr(batch, table)
        if rows:
            await conn.execute(
                insert(model.__table__), [dict(zip(columns, row, strict=True)) for row in rows]
            )


async def _skip_foreign_key_triggers(conn: AsyncConnection) -> None:
    """The generator's rows are consistent by construction; skip per-row FK checks if allowed."""
    try:
        async with conn.begin_nested():
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
    except DBAPIError:
        pass  # not a superuser: the load is slower, not wrong


def _secondary_indexes() -> tuple[list[Index], list[UniqueConstraint]]:
    """Every index and unique constraint of the seeded tables except their primary keys."""
    indexes: list[Index] = []
    uniques: list[UniqueConstraint] = []
    for _, model, _ in TABLES:
        table = model.__table__
        indexes += list(table.indexes)
        uniques += [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    return indexes, uniques


async def _drop_indexes(conn: AsyncConnection) -> None:
    indexes, uniques = _secondary_indexes()
    for index in indexes:
        await conn.execute(DropIndex(index))
    for constraint in uniques:
        await conn.execute(DropConstraint(constraint))


async def _create_indexes(conn: AsyncConnection) -> None:
    indexes, uniques = _secondary_indexes()
    for constraint in uniques:
        await conn.execute(AddConstraint(constraint))
    for index in indexes:
        await conn.execute(CreateIndex(index))


async def _finish_postgres(conn: AsyncConnection) -> None:
    for table, _, columns in TABLES:
        if columns[0] == "id":
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
            )
        await conn.execute(text(f"ANALYZE {table}"))


async def seed(
    engine: AsyncEngine,
    customers: int,
    *,
    batch_size: int = 5000,
    seed_value: int = 1,
    progress: Callable[[int], None] | None = None,
    rebuild_indexes: bool | None = None,
) -> SeedReport:
    """Add ``customers`` demo customers with their history; returns counts and time taken.

    ``rebuild_indexes`` (PostgreSQL only) defaults to large loads.
    """
    started = time.perf_counter()
    postgres = engine.dialect.name == "postgresql"
    if rebuild_indexes is None:
        rebuild_indexes = customers >= REBUILD_INDEXES_FROM
    rebuild = postgres and rebuild_indexes
    async with engine.begin() as conn:
        ids = await _next_ids(conn)
        if rebuild:
            await _drop_indexes(conn)
    sizes = deque(min(batch_size, customers - n) for n in range(0, customers, batch_size))
    interactions = 0
    try:
        with ProcessPoolExecutor(
            1, initializer=_start_worker, initargs=(seed_value, datetime.now(UTC), ids)
        ) as pool:
            pending: deque[tuple[int, Future[data.Batch]]] = deque()
            while sizes or pending:
                while sizes and len(pending) < 2:
                    size = sizes.popleft()
                    pending.append((size, pool.submit(_generate, size)))
                size, future = pending.popleft()
                batch = future.result()
                async with engine.begin() as conn:
                    if postgres:
                        await _skip_foreign_key_triggers(conn)
                        await _copy(conn, batch)
                    else:
                        await _insert(conn, batch)
                interactions += len(batch.interactions)
                if progress:
                    progress(size)
    finally:
        if rebuild:
            async with engine.begin() as conn:
                await _create_indexes(conn)
    if postgres:
        async with engine.begin() as conn:
            await _finish_postgres(conn)
    return SeedReport(customers, interactions, time.perf_counter() - started)

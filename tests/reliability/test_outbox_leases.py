"""Two outbox workers, one of them slower than its lease (a slow SMTP server): a row whose
lease lapsed mid-batch and was taken over is sent by the new holder only, never twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import Outbox, OutboxStatus
from callcenter.outbox import OutboxWorker
from tests.test_outbox import Clock, ScriptedSender, queue

LEASE = timedelta(seconds=8)  # outbox_lease_seconds, as the reliability tests set it


async def test_a_batch_outliving_its_lease_does_not_send_rows_taken_over_by_another_worker(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, sender = Clock(), ScriptedSender()
    slow, other = (
        OutboxWorker(sessions, [sender], now=clock, batch=10, lease=LEASE) for _ in range(2)
    )
    rows = [(f"customer{n}", str(n)) for n in range(10)]
    await queue(sessions, *rows)

    batch = await slow._claim()
    assert len(batch) == 10
    for item in batch[:3]:
        await slow._deliver(item)
    clock.advance(LEASE.total_seconds() + 1)  # the first three took longer than the lease
    assert await other.run_once() == 7
    for item in batch[3:]:  # the slow worker goes on with the rest of its stale batch
        await slow._deliver(item)

    assert sorted(sender.sent) == sorted(rows), "a row was sent twice or not at all"
    async with sessions() as session:
        stored = list(await session.scalars(select(Outbox)))
    assert {row.status for row in stored} == {OutboxStatus.SENT}
    assert {row.attempts for row in stored} == {1}


async def test_a_worker_whose_lease_still_holds_sends_its_whole_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, sender = Clock(), ScriptedSender()
    worker, other = (
        OutboxWorker(sessions, [sender], now=clock, batch=10, lease=LEASE) for _ in range(2)
    )
    await queue(sessions, *[(f"c{n}", str(n)) for n in range(10)])

    batch = await worker._claim()
    clock.advance(LEASE.total_seconds() - 1)
    assert await other.run_once() == 0
    for item in batch:
        await worker._deliver(item)
    assert len(sender.sent) == 10

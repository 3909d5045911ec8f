import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import Channel, Customer, Direction, Interaction, Outbox, OutboxStatus
from callcenter.outbox import MAX_ATTEMPTS, OutboxWorker, PermanentFailure, RetryLater, enqueue


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class ScriptedSender:
    """Records what it sent; fails as told per recipient."""

    channel = "test"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.failures: dict[str, list[Exception]] = {}

    async def send(self, item: Outbox) -> str | None:
        queue = self.failures.get(item.recipient)
        if queue:
            raise queue.pop(0)
        self.sent.append((item.recipient, item.payload["text"]))
        await asyncio.sleep(0)
        return f"ext-{item.id}"


async def queue(sessions: async_sessionmaker[AsyncSession], *rows: tuple[str, str]) -> None:
    """Queue rows due a minute ago, so any test clock (which starts now) finds them due."""
    due = datetime.now(UTC) - timedelta(minutes=1)
    async with sessions() as session, session.begin():
        for recipient, text in rows:
            enqueue(
                session, channel="test", recipient=recipient, payload={"text": text}, not_before=due
            )


async def statuses(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, OutboxStatus]]:
    async with sessions() as session:
        rows = await session.scalars(select(Outbox).order_by(Outbox.id))
        return [(row.payload["text"], row.status) for row in rows]


async def test_rows_go_out_in_order_and_a_retry_holds_back_only_that_recipient(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, sender = Clock(), ScriptedSender()
    worker = OutboxWorker(sessions, [sender], now=clock)
    await queue(sessions, ("ivan", "1"), ("ivan", "2"), ("olga", "a"), ("olga", "b"))
    sender.failures["ivan"] = [RetryLater("502 Bad Gateway")]

    while await worker.run_once():
        pass
    assert sender.sent == [("olga", "a"), ("olga", "b")]

    clock.advance(1)
    assert await worker.run_once() == 0  # backoff after the first failure is 2 s
    clock.advance(1)
    while await worker.run_once():
        pass
    assert sender.sent[2:] == [("ivan", "1"), ("ivan", "2")]
    assert all(status is OutboxStatus.SENT for _, status in await statuses(sessions))


async def test_retry_after_from_the_peer_is_honoured(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, sender = Clock(), ScriptedSender()
    worker = OutboxWorker(sessions, [sender], now=clock)
    await queue(sessions, ("ivan", "1"))
    sender.failures["ivan"] = [RetryLater("429 Too Many Requests", retry_after=30)]
    await worker.run_once()
    clock.advance(29)
    assert await worker.run_once() == 0
    clock.advance(1)
    assert await worker.run_once() == 1
    assert sender.sent == [("ivan", "1")]


async def test_a_permanent_failure_stops_retrying_and_releases_the_next_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, sender = Clock(), ScriptedSender()
    worker = OutboxWorker(sessions, [sender], now=clock)
    await queue(sessions, ("ivan", "1"), ("ivan", "2"))
    sender.failures["ivan"] = [PermanentFailure("403 Forbidden: bot was blocked by the user")]
    while await worker.run_once():
        pass
    assert await statuses(sessions) == [("1", OutboxStatus.FAILED), ("2", OutboxStatus.SENT)]
    async with sessions() as session:
        failed = await session.scalar(select(Outbox).where(Outbox.status == OutboxStatus.FAILED))
        assert "bot was blocked" in failed.last_error and failed.attempts == 1


async def test_gives_up_after_the_last_attempt(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock, sender = Clock(), ScriptedSender()
    worker = OutboxWorker(sessions, [sender], now=clock)
    await queue(sessions, ("ivan", "1"))
    sender.failures["ivan"] = [RetryLater("connection refused") for _ in range(MAX_ATTEMPTS)]
    for _ in range(MAX_ATTEMPTS):
        clock.advance(3600)
        assert await worker.run_once() == 1
    clock.advance(3600)
    assert await worker.run_once() == 0
    assert await statuses(sessions) == [("1", OutboxStatus.FAILED)]


async def test_a_lapsed_lease_of_a_crashed_worker_is_taken_over(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock, sender = Clock(), ScriptedSender()
    worker = OutboxWorker(sessions, [sender], now=clock)
    await queue(sessions, ("ivan", "1"))
    claimed = await worker._claim()  # a worker claims the row, then dies before sending
    assert len(claimed) == 1
    assert await worker.run_once() == 0
    clock.advance(61)
    assert await worker.run_once() == 1
    assert sender.sent == [("ivan", "1")]


async def test_two_workers_send_every_row_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender = ScriptedSender()
    rows = [(f"customer{n % 7}", str(n)) for n in range(60)]
    await queue(sessions, *rows)
    workers = [OutboxWorker(sessions, [sender], batch=5) for _ in range(2)]

    async def drain(worker: OutboxWorker) -> None:
        idle = 0
        while idle < 3:
            idle = 0 if await worker.run_once() else idle + 1
            await asyncio.sleep(0)

    await asyncio.gather(*(drain(w) for w in workers))
    assert sorted(sender.sent) == sorted(rows)
    for n in range(7):
        mine = [text for recipient, text in sender.sent if recipient == f"customer{n}"]
        assert mine == sorted(mine, key=int), "one recipient's rows went out of order"


async def test_the_sent_id_is_recorded_on_the_interaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender = ScriptedSender()
    async with sessions() as session, session.begin():
        customer = Customer(display_name="Иван")
        session.add(customer)
        await session.flush()
        reply = Interaction(
            customer_id=customer.id,
            channel=Channel.TELEGRAM,
            direction=Direction.OUTBOUND,
            text="Ок",
        )
        session.add(reply)
        await session.flush()
        item = enqueue(
            session,
            channel="test",
            recipient="ivan",
            payload={"text": "Ок", "interaction_id": reply.id},
        )
    await OutboxWorker(sessions, [sender]).run_once()
    async with sessions() as session:
        stored = await session.get(Interaction, reply.id)
        assert stored.external_id == f"ext-{item.id}"

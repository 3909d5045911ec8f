"""Durable timers: on time, once, across restarts and racing workers, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation import timers
from callcenter.automation.defaults import install_default_rules
from callcenter.automation.engine import Engine
from callcenter.automation.timers import MAX_ATTEMPTS, TimerWorker
from callcenter.db import create_engine, session_factory
from callcenter.models import Outbox, Timer, TimerStatus
from callcenter.outbox import enqueue
from tests.automation.helpers import (
    T0,
    Clock,
    config,
    make_customer,
    outbox_rows,
    receive,
    telegram_message,
)


@asynccontextmanager
async def process(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on an engine of their own, as another server process would have."""
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def write_outbox(session: AsyncSession, timer: Timer, now: datetime) -> None:
    """A handler with a visible effect: one outbox row per firing."""
    enqueue(session, channel="test", recipient="r", payload={"timer": timer.key})
    await asyncio.sleep(0.001)  # let a racing worker run while this one holds its claim


async def arm_many(sessions: async_sessionmaker[AsyncSession], keys: list[str], due: datetime):
    async with sessions() as session, session.begin():
        for key in keys:
            await timers.arm(session, "test", key, due, {"n": key})


async def fired_keys(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    return sorted(row.payload["timer"] for row in await outbox_rows(sessions))


async def test_arming_is_idempotent_and_cancelling_stops_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        first = await timers.arm(session, "test", "k", T0, {"v": 1})
        again = await timers.arm(session, "test", "k", T0 + timedelta(hours=1), {"v": 2})
        assert again.id == first.id and again.due_at == T0 and again.payload == {"v": 1}
        assert await timers.cancel(session, "k") is True
        assert await timers.cancel(session, "k") is False
        revived = await timers.arm(session, "test", "k", T0 + timedelta(hours=1), {"v": 3})
        assert (revived.status, revived.payload) == (TimerStatus.PENDING, {"v": 3})
        await timers.arm(session, "test", "k:other", T0, {})
        assert await timers.cancel_prefix(session, "k") == 2
    async with sessions() as session:
        assert len(list(await session.scalars(select(Timer)))) == 2


async def test_a_timer_fires_at_its_time_and_never_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    await arm_many(sessions, ["a"], T0 + timedelta(minutes=10))
    worker = TimerWorker(sessions, {"test": write_outbox}, now=clock)
    clock.advance(minutes=10, microseconds=-1)
    assert await worker.run_once() == 0
    clock.advance(microseconds=1)
    assert await worker.run_once() == 1
    clock.advance(days=1)
    assert await worker.run_once() == 0
    assert await fired_keys(sessions) == ["a"]
    async with sessions() as session:
        timer = await session.scalar(select(Timer))
    assert (timer.status, timer.fired_at) == (TimerStatus.FIRED, T0 + timedelta(minutes=10))


async def test_a_fired_timer_is_not_armed_again(sessions: async_sessionmaker[AsyncSession]) -> None:
    await arm_many(sessions, ["a"], T0)
    await TimerWorker(sessions, {"test": write_outbox}, now=Clock()).run_once()
    await arm_many(sessions, ["a"], T0 + timedelta(minutes=1))
    clock = Clock(T0 + timedelta(hours=1))
    assert await TimerWorker(sessions, {"test": write_outbox}, now=clock).run_once() == 0


async def test_timers_survive_a_restart_and_fire_once(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    clock = Clock()
    async with process(database_url) as first:
        await arm_many(first, ["before-restart"], T0 + timedelta(hours=2))
        assert await TimerWorker(first, {"test": write_outbox}, now=clock).run_once() == 0
    clock.advance(hours=3)
    async with process(database_url) as second:
        assert await TimerWorker(second, {"test": write_outbox}, now=clock).run_once() == 1
    async with process(database_url) as third:
        assert await TimerWorker(third, {"test": write_outbox}, now=clock).run_once() == 0
    assert await fired_keys(sessions) == ["before-restart"]


async def test_a_worker_dying_while_firing_leaves_the_timer_for_the_next_one(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    clock = Clock()
    await arm_many(sessions, ["x"], T0)

    async def dies(session: AsyncSession, timer: Timer, now: datetime) -> None:
        await write_outbox(session, timer, now)
        raise asyncio.CancelledError  # the process is stopped in the middle of the handler

    async with process(database_url) as crashed:
        with pytest.raises(asyncio.CancelledError):
            await TimerWorker(crashed, {"test": dies}, now=clock).run_once()
    assert await fired_keys(sessions) == []
    async with process(database_url) as restarted:
        assert await TimerWorker(restarted, {"test": write_outbox}, now=clock).run_once() == 1
    assert await fired_keys(sessions) == ["x"]


async def test_two_racing_workers_fire_every_timer_exactly_once(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    keys = [f"t{n:02}" for n in range(40)]
    await arm_many(sessions, keys, T0)
    clock = Clock(T0 + timedelta(seconds=1))
    async with process(database_url) as one, process(database_url) as two:
        workers = [TimerWorker(s, {"test": write_outbox}, now=clock) for s in (one, two)]
        counts = await asyncio.gather(*(w.run_once() for w in workers))
    assert sum(counts) == 40
    assert await fired_keys(sessions) == keys


async def test_a_failing_handler_is_retried_with_backoff_then_given_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    calls = []

    async def broken(session: AsyncSession, timer: Timer, now: datetime) -> None:
        calls.append(now)
        enqueue(session, channel="test", recipient="r", payload={"timer": "partial"})
        raise RuntimeError("handler bug")

    await arm_many(sessions, ["bad"], T0)
    worker = TimerWorker(sessions, {"test": broken}, now=clock)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # waiting 2 s before the retry
    for _ in range(MAX_ATTEMPTS):
        clock.advance(hours=1)
        await worker.run_once()
    assert len(calls) == MAX_ATTEMPTS
    assert await outbox_rows(sessions) == []  # the failed attempts' writes were rolled back
    async with sessions() as session:
        timer = await session.scalar(select(Timer))
    assert (timer.status, timer.attempts) == (TimerStatus.CANCELLED, MAX_ATTEMPTS)


async def test_two_servers_send_the_unanswered_apology_once_per_ticket(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session, session.begin():
        await install_default_rules(session)
    clock = Clock()
    engine = Engine(sessions, config(), now=clock)
    for n in range(8):
        await make_customer(sessions, f"Клиент {n}", email=f"c{n}@example.ru", telegram=8000 + n)
        result = await receive(sessions, telegram_message("Заказ не пришёл", 1, user=8000 + n))
        for event in result.events:
            await engine.handle(event)
    acknowledgements = len(await outbox_rows(sessions))
    clock.advance(hours=2)
    async with process(database_url) as one, process(database_url) as two:
        workers = [
            TimerWorker(s, Engine(s, config(), now=clock).timer_handlers, now=clock)
            for s in (one, two)
        ]
        assert sum(await asyncio.gather(*(w.run_once() for w in workers))) == 8
    rows = (await outbox_rows(sessions))[acknowledgements:]
    assert sorted(r.recipient for r in rows if r.channel == "email") == [
        f"c{n}@example.ru" for n in range(8)
    ]
    assert sorted(r.recipient for r in rows if r.channel == "telegram") == [
        str(8000 + n) for n in range(8)
    ]
    async with sessions() as session:
        assert len(list(await session.scalars(select(Outbox)))) == acknowledgements + 16

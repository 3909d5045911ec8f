"""Callback rows as the dialler uses them: claims (locked, leased, once across processes),
outcomes (done with a call record, retried later, failed after the limit)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import (
    CallbackPolicy,
    DialOutcome,
    PlacedCall,
    claim_callback,
    due_queues,
    finish_attempt,
    recent_callbacks,
    request_callback,
)
from callcenter.automation.engine import Engine
from callcenter.automation.events import CallAbandoned
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.db import create_engine, session_factory, unit_of_work
from callcenter.domain.customers import create_customer
from callcenter.models import Call, CallOutcome, Direction, Interaction, Role, User
from callcenter.screenpop.card import build_card
from tests.automation.helpers import make_call, make_customer

T0 = datetime(2025, 11, 14, 11, 23, tzinfo=UTC)
POLICY = CallbackPolicy(max_attempts=2, retry_after=timedelta(minutes=10))


async def _callbacks(
    sessions: async_sessionmaker[AsyncSession], *dues: tuple[timedelta, str]
) -> list[int]:
    async with unit_of_work(sessions) as session:
        customer = await create_customer(session, "Иван Петров")
        ids = []
        for offset, queue in dues:
            row = await request_callback(
                session,
                customer_id=customer.id,
                ticket_id=None,
                phone="+79161234567",
                channel="call",
                due_at=T0 + offset,
                queue=queue,
            )
            ids.append(row.id)
    return ids


async def _claim(sessions, agent: str = "PJSIP/1001", at: datetime = T0, queues=("support",)):  # type: ignore[no-untyped-def]
    async with unit_of_work(sessions) as session:
        row = await claim_callback(
            session, agent_endpoint=agent, queues=queues, now=at, policy=POLICY
        )
        return row.id if row else None


async def _row(sessions: async_sessionmaker[AsyncSession], callback_id: int) -> CallbackRequest:
    async with sessions() as session:
        return await session.get(CallbackRequest, callback_id)


async def test_a_claim_takes_the_oldest_due_callback_of_the_agents_queues(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    later, other_queue, oldest, any_queue = await _callbacks(
        sessions,
        (timedelta(minutes=5), "support"),
        (timedelta(minutes=-20), "sales"),
        (timedelta(minutes=-10), "support"),
        (timedelta(minutes=-1), ""),
    )
    async with sessions() as session:
        assert await due_queues(session, T0) == {"support": 1, "sales": 1, "": 1}
    assert await _claim(sessions) == oldest
    claimed = await _row(sessions, oldest)
    assert (claimed.status, claimed.agent_endpoint) == (CallbackStatus.ASSIGNED, "PJSIP/1001")
    assert claimed.lease_until == T0 + POLICY.lease and claimed.last_attempt_at == T0
    assert await _claim(sessions, "PJSIP/1002") == any_queue  # no queue: anyone's
    assert await _claim(sessions, "PJSIP/1002") is None  # not due yet, or another queue's
    assert await _claim(sessions, at=T0 + timedelta(minutes=5)) == later
    assert await _claim(sessions, queues=("sales",)) == other_queue


async def test_concurrent_diallers_in_two_processes_claim_each_callback_once(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await _callbacks(sessions, *[(timedelta(minutes=-n), "support") for n in range(5)])
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        factories = [session_factory(engine) for engine in engines]
        claims = await asyncio.gather(
            *(_claim(factories[n % 2], f"PJSIP/{1000 + n}") for n in range(12))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    taken = [claim for claim in claims if claim is not None]
    assert sorted(taken) == sorted(ids)  # every one taken, none twice
    async with sessions() as session:
        agents = {row.agent_endpoint for row in await session.scalars(select(CallbackRequest))}
    assert len(agents) == 5


async def test_a_lapsed_lease_lets_another_dialler_take_the_callback_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [callback_id] = await _callbacks(sessions, (timedelta(0), "support"))
    assert await _claim(sessions) == callback_id
    assert await _claim(sessions, "PJSIP/1002", T0 + POLICY.lease) is None
    lapsed = T0 + POLICY.lease + timedelta(seconds=1)
    assert await _claim(sessions, "PJSIP/1002", lapsed) == callback_id


async def _finish(sessions, callback_id: int, outcome: DialOutcome, at: datetime = T0, **kw):  # type: ignore[no-untyped-def]
    async with unit_of_work(sessions) as session:
        row, _ = await finish_attempt(
            session, callback_id, outcome, reason="r", now=at, policy=POLICY, **kw
        )
        return row.status, row.attempts, row.due_at, row.lease_until, row.outcome


async def test_no_answer_is_retried_later_then_failed_after_the_limit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [callback_id] = await _callbacks(sessions, (timedelta(0), "support"))
    await _claim(sessions)
    assert await _finish(sessions, callback_id, DialOutcome.NO_ANSWER) == (
        CallbackStatus.REQUESTED,
        1,
        T0 + POLICY.retry_after,
        None,
        "no_answer: r",
    )
    assert await _claim(sessions, at=T0 + timedelta(minutes=9)) is None
    retry = T0 + POLICY.retry_after
    assert await _claim(sessions, at=retry) == callback_id
    # The agent missing the call does not count against the customer's attempts.
    status, attempts, due, _, _ = await _finish(
        sessions, callback_id, DialOutcome.AGENT_MISSED, retry
    )
    assert (status, attempts, due) == (
        CallbackStatus.REQUESTED,
        1,
        retry + POLICY.agent_retry_after,
    )
    assert await _claim(sessions, at=due) == callback_id
    status, attempts, *_ = await _finish(sessions, callback_id, DialOutcome.NO_ANSWER, due)
    assert (status, attempts) == (CallbackStatus.FAILED, 2)
    assert await _claim(sessions, at=due + timedelta(days=1)) is None


async def test_a_connected_callback_is_done_with_one_outbound_call_record(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(sessions) as session:
        session.add(User(username="anna", role=Role.AGENT, sip_endpoint="PJSIP/1001"))
    [callback_id] = await _callbacks(sessions, (timedelta(0), "support"))
    await _claim(sessions)
    call = PlacedCall("callback-1-abc", T0, T0 + timedelta(seconds=8), T0 + timedelta(seconds=70))
    status, attempts, *_ = await _finish(sessions, callback_id, DialOutcome.CONNECTED, call=call)
    assert (status, attempts) == (CallbackStatus.DONE, 1)
    async with sessions() as session:
        [record] = list(await session.scalars(select(Call)))
        interaction = await session.get(Interaction, record.interaction_id)
        anna = await session.scalar(select(User.id).where(User.username == "anna"))
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 1
        listed = await recent_callbacks(session)
    assert (record.linkedid, record.talk_seconds, record.agent_id) == ("callback-1-abc", 62, anna)
    assert (record.queue, record.caller_number) == ("support", "+79161234567")
    assert interaction.direction is Direction.OUTBOUND
    assert [row.id for row in listed] == [callback_id]


async def test_a_number_that_cannot_be_dialled_fails_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [callback_id] = await _callbacks(sessions, (timedelta(0), "support"))
    await _claim(sessions)
    status, attempts, *_ = await _finish(sessions, callback_id, DialOutcome.REFUSED)
    assert (status, attempts) == (CallbackStatus.FAILED, 0)


async def test_the_abandoned_call_rule_leaves_the_callback_to_the_calls_queue(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    customer = await make_customer(sessions, phone="+79161234567")
    call, ticket = await make_call(sessions, customer, outcome=CallOutcome.ABANDONED)
    await engine.handle(CallAbandoned(call, ticket, customer, "+79161234567", "support", 45, T0))
    async with sessions() as session:
        [callback] = list(await session.scalars(select(CallbackRequest)))
    assert (callback.queue, callback.status, callback.attempts) == (
        "support",
        CallbackStatus.REQUESTED,
        0,
    )
    assert await _claim(sessions, queues=("sales",), at=T0 + timedelta(minutes=1)) is None
    assert await _claim(sessions, at=T0 + timedelta(minutes=1)) == callback.id


async def test_every_attempt_on_the_customers_side_is_one_outbound_call_in_their_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    policy = CallbackPolicy(max_attempts=4, retry_after=timedelta(minutes=10))
    customer_id = await make_customer(sessions, phone="+79161234567")
    async with unit_of_work(sessions) as session:
        callback_id = (
            await request_callback(
                session,
                customer_id=customer_id,
                ticket_id=None,
                phone="+79161234567",
                channel="call",
                due_at=T0,
                queue="support",
            )
        ).id
    at = T0
    for n, outcome in enumerate(
        [DialOutcome.NO_ANSWER, DialOutcome.BUSY, DialOutcome.FAILED, DialOutcome.CONNECTED]
    ):
        async with unit_of_work(sessions) as session:
            await claim_callback(
                session, agent_endpoint="PJSIP/1001", queues=("support",), now=at, policy=policy
            )
        linkedid = f"callback-{callback_id}-{n}"
        call = PlacedCall(linkedid, at, at + timedelta(seconds=5), at + timedelta(seconds=65))
        announced = []
        for _ in range(2):  # the handler runs again for the same attempt: recorded once
            async with unit_of_work(sessions) as session:
                row, recorded = await finish_attempt(
                    session, callback_id, outcome, reason="r", now=at, policy=policy, call=call
                )
                status, attempts = row.status, row.attempts
            announced.append(recorded and (recorded.linkedid, recorded.customer_id))
        assert attempts == n + 1
        assert announced == [(linkedid, customer_id), None]  # one CallRecorded to publish
        at = at + policy.retry_after
    assert status is CallbackStatus.DONE
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Interaction.text, Interaction.direction, Call.outcome, Call.talk_seconds)
                .join(Call, Call.interaction_id == Interaction.id)
                .order_by(Interaction.occurred_at)
            )
        ).all()
        card = await build_card(session, "+79161234567", at)
    assert rows == [
        (
            "Обратный звонок на +79161234567: не ответил",
            Direction.OUTBOUND,
            CallOutcome.NO_ANSWER,
            0,
        ),
        ("Обратный звонок на +79161234567: занято", Direction.OUTBOUND, CallOutcome.BUSY, 0),
        (
            "Обратный звонок на +79161234567: не удалось дозвониться",
            Direction.OUTBOUND,
            CallOutcome.FAILED,
            0,
        ),
        (
            "Обратный звонок на +79161234567: разговор 60 с",
            Direction.OUTBOUND,
            CallOutcome.ANSWERED,
            60,
        ),
    ]
    # The screen-pop's earlier contacts (and the customer's timeline) show every attempt.
    assert [item.excerpt for item in card.timeline] == [text for text, *_ in reversed(rows)]


async def test_an_attempt_the_agent_missed_is_not_in_the_customers_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    [callback_id] = await _callbacks(sessions, (timedelta(0), "support"))
    await _claim(sessions)
    status, attempts, *_ = await _finish(sessions, callback_id, DialOutcome.AGENT_MISSED)
    assert (status, attempts) == (CallbackStatus.REQUESTED, 0)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 0

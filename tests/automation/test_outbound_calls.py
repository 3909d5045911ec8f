"""Click-to-calls stored as outbound calls: under the customer owning the number (normalised),
with outcome, agent and times; once per Linkedid, however often or concurrently recorded."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.outbound_calls import (
    ClickToCallEnded,
    OutboundCall,
    record_click_to_call,
    store_outbound_call,
)
from callcenter.bus import Bus
from callcenter.channels.telephony import callrows
from callcenter.channels.telephony.ari import AriClient
from callcenter.channels.telephony.events import CallRecorded
from callcenter.channels.telephony.records import CallRecorder
from callcenter.channels.telephony.stasis import StasisApp
from callcenter.crm.catchup import CatchUp
from callcenter.crm.feed import Feed
from callcenter.db import create_engine, session_factory, unit_of_work
from callcenter.migrate import upgrade_async
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Customer,
    Direction,
    Identity,
    Interaction,
    Role,
    Ticket,
    User,
)
from tests.automation.helpers import make_customer, outbox_rows
from tests.dbs import postgres_database
from tests.telephony.test_records import FlakyTcpProxy

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
PHONE = "+79161234567"


def _ended(outcome: CallOutcome, linkedid: str = "c2c-1-agent") -> ClickToCallEnded:
    answered = T0 + timedelta(seconds=12) if outcome is CallOutcome.ANSWERED else None
    return ClickToCallEnded(
        linkedid=linkedid,
        agent_endpoint="PJSIP/1001",
        phone=PHONE,
        outcome=outcome,
        started_at=T0,
        answered_at=answered,
        ended_at=T0 + timedelta(seconds=95),
    )


async def make_agent(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Anna, the agent whose phone is PJSIP/1001."""
    async with unit_of_work(sessions) as session:
        user = User(username="anna", role=Role.AGENT, sip_endpoint="PJSIP/1001")
        session.add(user)
        await session.flush()
        return user.id


async def _record(sessions: async_sessionmaker[AsyncSession], ended: ClickToCallEnded) -> bool:
    async with unit_of_work(sessions) as session:
        _, recorded = await record_click_to_call(session, ended)
    return recorded is not None


async def _calls(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Interaction, Call]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Interaction, Call)
            .join(Call, Call.interaction_id == Interaction.id)
            .order_by(Interaction.id)
        )
        return [(interaction, call) for interaction, call in rows]


async def test_an_answered_click_to_call_goes_into_the_number_owners_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    agent_id = await make_agent(sessions)
    customer_id = await make_customer(sessions, phone="8 (916) 123-45-67")

    assert await _record(sessions, _ended(CallOutcome.ANSWERED))

    [(interaction, call)] = await _calls(sessions)
    assert (interaction.customer_id, interaction.channel.value, interaction.direction) == (
        customer_id,
        "call",
        Direction.OUTBOUND,
    )
    assert interaction.external_id == call.linkedid == "c2c-1-agent"
    assert interaction.agent_id == call.agent_id == agent_id
    assert interaction.text == f"Исходящий звонок на {PHONE}: разговор 83 с"
    assert (call.outcome, call.talk_seconds, call.wait_seconds) == (CallOutcome.ANSWERED, 83, 0)
    assert (call.agent_endpoint, call.caller_number, call.queue) == ("PJSIP/1001", PHONE, None)
    assert call.started_at.replace(tzinfo=UTC) == T0
    assert call.answered_at is not None
    assert call.answered_at.replace(tzinfo=UTC) == T0 + timedelta(seconds=12)
    assert call.ended_at is not None
    assert call.ended_at.replace(tzinfo=UTC) == T0 + timedelta(seconds=95)


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        (CallOutcome.NO_ANSWER, "не ответил"),
        (CallOutcome.BUSY, "занято"),
        (CallOutcome.FAILED, "не удалось дозвониться"),
    ],
)
async def test_an_unanswered_click_to_call_is_stored_with_why(
    sessions: async_sessionmaker[AsyncSession], outcome: CallOutcome, text: str
) -> None:
    assert await _record(sessions, _ended(outcome))

    [(interaction, call)] = await _calls(sessions)
    assert interaction.text == f"Исходящий звонок на {PHONE}: {text}"
    assert (call.outcome, call.talk_seconds, call.answered_at) == (outcome, 0, None)
    assert interaction.agent_id is None  # no user has the endpoint


async def test_a_number_nobody_owns_gets_a_new_profile_with_that_phone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    other = await make_customer(sessions, phone="+79990000000")

    await _record(sessions, _ended(CallOutcome.NO_ANSWER))

    [(interaction, _)] = await _calls(sessions)
    assert interaction.customer_id != other
    async with sessions() as session:
        phones = await session.scalars(
            select(Identity.value).where(Identity.customer_id == interaction.customer_id)
        )
        assert list(phones) == [PHONE]


async def test_recording_the_same_call_again_stores_nothing_more(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert await _record(sessions, _ended(CallOutcome.ANSWERED))
    assert not await _record(sessions, _ended(CallOutcome.ANSWERED))
    assert not await _record(sessions, _ended(CallOutcome.BUSY))  # a later, wrong reading too

    [(_, call)] = await _calls(sessions)
    assert call.outcome is CallOutcome.ANSWERED
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1


async def test_a_transaction_that_looked_before_another_committed_stores_nothing_more(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes recording one call at once: the second found nothing stored yet, so it
    inserts; the unique Linkedid refuses it and the first one's record is returned."""
    customer_id = await make_customer(sessions, phone=PHONE)
    call = OutboundCall(
        linkedid="c2c-2-agent",
        customer_id=customer_id,
        phone=PHONE,
        agent_endpoint="PJSIP/1001",
        outcome=CallOutcome.BUSY,
        started_at=T0,
        answered_at=None,
        ended_at=T0 + timedelta(seconds=5),
        title="Исходящий звонок",
    )
    async with unit_of_work(sessions) as session:
        first, recorded = await store_outbound_call(session, call)
    assert recorded is not None
    assert (recorded.interaction_id, recorded.linkedid, recorded.outcome) == (
        first.id,
        "c2c-2-agent",
        CallOutcome.BUSY,
    )
    looks = []
    real = callrows.stored_call

    async def late(session: AsyncSession, linkedid: str) -> Interaction | None:
        looks.append(linkedid)
        return None if len(looks) == 1 else await real(session, linkedid)

    monkeypatch.setattr(callrows, "stored_call", late)
    async with unit_of_work(sessions) as session:
        again, recorded = await store_outbound_call(session, call)
        await session.flush()  # the transaction is still usable after the refused insert

    assert (again.id, recorded, looks) == (first.id, None, ["c2c-2-agent"] * 2)
    assert len(await _calls(sessions)) == 1


async def test_only_outcomes_of_an_outbound_call_are_stored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(ValueError, match="abandoned"):
        await _record(sessions, _ended(CallOutcome.ABANDONED))
    assert await _calls(sessions) == []


async def test_a_click_to_call_stored_just_before_a_crash_reaches_the_crm_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Committed, but the process died before announcing it: the feed's catch-up scan queues
    it as an outgoing call, and the announcement arriving after all adds nothing."""
    feed = Feed(sessions, crm=True)
    catchup = CatchUp(sessions, feed)
    assert await catchup.run_once() == 0  # the checkpoints start here
    async with unit_of_work(sessions) as session:
        interaction, _ = await record_click_to_call(session, _ended(CallOutcome.BUSY))

    assert await catchup.run_once() == 1
    await feed.on_call(
        CallRecorded(interaction.id, interaction.customer_id, None, "c2c-1-agent", None,
                     PHONE, CallOutcome.BUSY, 0, T0)
    )  # fmt: skip

    [push] = [r.payload["call"] for r in await outbox_rows(sessions) if r.channel == "crm"]
    assert (push["interaction_id"], push["outbound"], push["outcome"]) == (
        interaction.id,
        True,
        "busy",
    )


async def test_click_to_calls_ending_while_postgresql_is_away_are_stored_once_in_order() -> None:
    """The database goes away mid-call: the ARI app keeps going, its records wait in the
    recorder and are stored once each, in order, with one CallRecorded each, when it is back."""
    async with postgres_database() as url:
        await upgrade_async(url)
        proxy = FlakyTcpProxy(make_url(url).port or 5432)
        await proxy.start()
        engine = create_engine(make_url(url).set(port=proxy.port).render_as_string(False))
        direct = create_engine(url)
        bus = Bus()
        recorded: list[CallRecorded] = []

        async def collect(event: CallRecorded) -> None:
            recorded.append(event)

        bus.subscribe(CallRecorded, collect)
        recorder = CallRecorder(session_factory(engine), bus=bus, backoff=(0.05, 0.2))
        ari = AriClient("http://127.0.0.1:9", "user", "secret", "callcenter")  # never started
        app = StasisApp(ari, session_factory(engine), bus, recorder=recorder)
        try:
            anna = await make_agent(session_factory(direct))
            proxy.down()
            ends = [
                _ended(CallOutcome.BUSY, "c2c-1-agent"),
                _ended(CallOutcome.ANSWERED, "c2c-2-agent"),
                _ended(CallOutcome.BUSY, "c2c-1-agent"),  # the same end recorded again
            ]
            for ended in ends:
                await app.record_click_to_call(ended)
            await asyncio.sleep(1.0)  # several failed attempts
            assert recorder.pending == 3
            assert await _calls(session_factory(direct)) == []

            proxy.up = True
            await asyncio.wait_for(recorder.drain(), 30)
            await bus.drain()

            calls = await _calls(session_factory(direct))
            assert [(c.linkedid, c.outcome, c.agent_id) for _, c in calls] == [
                ("c2c-1-agent", CallOutcome.BUSY, anna),
                ("c2c-2-agent", CallOutcome.ANSWERED, anna),
            ]
            assert [(r.interaction_id, r.linkedid) for r in recorded] == [
                (i.id, c.linkedid) for i, c in calls
            ]
            assert recorder.pending == 0
        finally:
            await app.close()
            await proxy.stop()
            await engine.dispose()
            await direct.dispose()


async def test_a_click_to_call_made_from_a_ticket_goes_into_that_tickets_thread(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Only a ticket of the customer the number belongs to: another's is not linked."""
    customer_id = await make_customer(sessions, phone=PHONE)
    other_id = await make_customer(sessions, "Ольга", phone="+79161112233")
    async with unit_of_work(sessions) as session:
        tickets = [Ticket(customer_id=c, channel=Channel.CALL) for c in (customer_id, other_id)]
        session.add_all(tickets)
        await session.flush()
        own, foreign = (t.id for t in tickets)

    await _record(sessions, replace(_ended(CallOutcome.BUSY, "c2c-1-agent"), ticket_id=own))
    await _record(sessions, replace(_ended(CallOutcome.BUSY, "c2c-2-agent"), ticket_id=foreign))

    calls = await _calls(sessions)
    assert [(i.customer_id, i.ticket_id) for i, _ in calls] == [
        (customer_id, own),
        (customer_id, None),
    ]

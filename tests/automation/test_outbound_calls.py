"""Click-to-calls stored as outbound calls: under the customer owning the number (normalised),
with outcome, agent and times; once per Linkedid, however often or concurrently recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation import outbound_calls
from callcenter.automation.outbound_calls import (
    ClickToCallEnded,
    OutboundCall,
    record_click_to_call,
    store_outbound_call,
)
from callcenter.channels.telephony.events import CallRecorded
from callcenter.crm.catchup import CatchUp
from callcenter.crm.feed import Feed
from callcenter.db import unit_of_work
from callcenter.models import (
    Call,
    CallOutcome,
    Customer,
    Direction,
    Identity,
    Interaction,
    Role,
    User,
)
from tests.automation.helpers import make_customer, outbox_rows

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
        _, created = await record_click_to_call(session, ended)
    return created


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
        first, created = await store_outbound_call(session, call)
    assert created
    looks = []
    real = outbound_calls.stored_call

    async def late(session: AsyncSession, linkedid: str) -> Interaction | None:
        looks.append(linkedid)
        return None if len(looks) == 1 else await real(session, linkedid)

    monkeypatch.setattr(outbound_calls, "stored_call", late)
    async with unit_of_work(sessions) as session:
        again, created = await store_outbound_call(session, call)
        await session.flush()  # the transaction is still usable after the refused insert

    assert (again.id, created, looks) == (first.id, False, ["c2c-2-agent"] * 2)
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

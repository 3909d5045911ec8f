"""Call direction in the CRMs: a callback (our outbound call) is registered as outgoing in
Bitrix24 (TYPE 1) and Outbound in Zoho, with why it did not connect; a customer's call stays
incoming. End to end: the dialler's record of an attempt → feed → outbox → the fake CRM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import (
    DialOutcome,
    PlacedCall,
    claim_callback,
    finish_attempt,
    request_callback,
)
from callcenter.crm.base import CallPush
from callcenter.crm.bitrix import Bitrix24
from callcenter.crm.feed import Feed
from callcenter.crm.models import WebhookSubscription
from callcenter.crm.sender import CrmSender
from callcenter.crm.zoho import ZohoCrm
from callcenter.health import HealthRegistry
from callcenter.models import Call, CallOutcome, OutboxStatus, utcnow
from callcenter.outbox import OutboxWorker
from tests.automation.helpers import Clock, make_call, make_customer, outbox_rows
from tests.crm.fakes import FakeBitrix24, FakeZoho, MemorySteps

PHONE = "+79161234567"
AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ATTEMPTS = [DialOutcome.CONNECTED, DialOutcome.NO_ANSWER, DialOutcome.BUSY, DialOutcome.FAILED]


async def _attempt(
    sessions: async_sessionmaker[AsyncSession], customer_id: int, outcome: DialOutcome, n: int
) -> int:
    """One callback attempt stored the way the dialler stores it; the call's interaction id."""
    at = AT + timedelta(minutes=n)
    async with sessions() as session, session.begin():
        callback = await request_callback(
            session,
            customer_id=customer_id,
            ticket_id=None,
            phone=PHONE,
            channel="call",
            due_at=at,
            queue="support",
        )
        callback_id = callback.id
        assert await claim_callback(
            session, agent_endpoint="PJSIP/1001", queues=("support",), now=at
        )
    answered = at + timedelta(seconds=5) if outcome is DialOutcome.CONNECTED else None
    call = PlacedCall(f"callback-{callback_id}-x", at, answered, at + timedelta(seconds=65))
    async with sessions() as session, session.begin():
        await finish_attempt(session, callback_id, outcome, now=at, call=call)
    async with sessions() as session:
        interaction_id = await session.scalar(
            select(Call.interaction_id).where(Call.linkedid == call.linkedid)
        )
    assert interaction_id is not None
    return interaction_id


async def _calls(sessions: async_sessionmaker[AsyncSession], feed: Feed) -> list[int]:
    """Four callback attempts and one customer's (inbound, answered) call, fed to the CRM."""
    customer = await make_customer(sessions, phone=PHONE)
    ids = [await _attempt(sessions, customer, outcome, n) for n, outcome in enumerate(ATTEMPTS)]
    inbound, _ = await make_call(
        sessions,
        customer,
        outcome=CallOutcome.ANSWERED,
        at=AT + timedelta(minutes=len(ATTEMPTS)),
        with_ticket=False,
    )
    ids.append(inbound)
    for interaction_id in ids:
        async with sessions() as session, session.begin():
            await feed.call(session, interaction_id)
    return ids


async def _send(sessions: async_sessionmaker[AsyncSession], connector) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(utcnow())
    worker = OutboxWorker(
        sessions, [CrmSender(connector, sessions, health=HealthRegistry())], now=clock
    )
    while await worker.run_once():
        clock.advance(seconds=2)
    rows = [r for r in await outbox_rows(sessions) if r.channel == "crm"]
    assert len(rows) == 5 and {r.status for r in rows} == {OutboxStatus.SENT}, [
        r.last_error for r in rows
    ]


def _minute(started_at: str) -> int:
    return int((datetime.fromisoformat(started_at) - AT).total_seconds() // 60)


async def test_bitrix24_registers_callbacks_as_outgoing_with_their_status(
    sessions: async_sessionmaker[AsyncSession], bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    await _calls(sessions, Feed(sessions, crm=True))
    await _send(sessions, bitrix)

    got = sorted(
        (
            _minute(c["register"]["CALL_START_DATE"]),
            c["register"]["TYPE"],
            c["finish"]["STATUS_CODE"],
            c["finish"]["DURATION"],
        )
        for c in bitrix_fake.external_calls.values()
    )
    assert got == [
        (0, 1, "200", 60),  # the callback that connected
        (1, 1, "304", 0),  # no answer
        (2, 1, "486", 0),  # busy
        (3, 1, "503", 0),  # failed: the direction is unavailable
        (4, 2, "200", 0),  # the customer's own call: incoming
    ]


async def test_zoho_logs_callbacks_as_outbound_calls_saying_why_they_failed(
    sessions: async_sessionmaker[AsyncSession], zoho: ZohoCrm, zoho_fake: FakeZoho
) -> None:
    await _calls(sessions, Feed(sessions, crm=True))
    await _send(sessions, zoho)

    got = sorted(
        (_minute(c["Call_Start_Time"]), c["Call_Type"], c["Subject"], c["Call_Duration"])
        for c in zoho_fake.records["Calls"]
    )
    assert got == [
        (0, "Outbound", f"Исходящий звонок {PHONE}", "01:00"),
        (1, "Outbound", f"Исходящий звонок {PHONE}: не ответил", "00:00"),
        (2, "Outbound", f"Исходящий звонок {PHONE}: занято", "00:00"),
        (3, "Outbound", f"Исходящий звонок {PHONE}: не дозвонились", "00:00"),
        (4, "Inbound", f"Входящий звонок {PHONE}", "00:00"),
    ]


async def test_the_call_ended_webhook_names_direction_and_outcome(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            WebhookSubscription(url="https://h.example/", secret="s", events=["call.ended"])
        )
    await _calls(sessions, Feed(sessions, crm=False))

    events = [r.payload["event"] for r in await outbox_rows(sessions)]
    got = [(e["data"]["call"]["direction"], e["data"]["call"]["outcome"]) for e in events]
    assert got == [
        ("out", "answered"),
        ("out", "no_answer"),
        ("out", "busy"),
        ("out", "failed"),
        ("in", "answered"),
    ]


@pytest.mark.parametrize(
    ("outbound", "outcome", "type_", "status"),
    [
        (False, "", 2, "304"),  # a push queued before direction and outcome were sent
        (False, "abandoned", 2, "304"),
        (True, "", 1, "304"),
        (True, "busy", 1, "486"),
    ],
)
async def test_an_unanswered_push_gets_its_type_and_status(
    bitrix: Bitrix24,
    bitrix_fake: FakeBitrix24,
    outbound: bool,
    outcome: str,
    type_: int,
    status: str,
) -> None:
    start = "2026-11-28T10:00:00+00:00"
    push = CallPush(9, PHONE, start, 0, False, outbound=outbound, outcome=outcome)
    ref = await bitrix.push_call(push, MemorySteps())
    call = bitrix_fake.external_calls[ref.id]
    assert (call["register"]["TYPE"], call["finish"]["STATUS_CODE"]) == (type_, status)

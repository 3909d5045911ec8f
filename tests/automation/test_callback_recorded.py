"""A callback attempt stored in the customer's history is announced with ``CallRecorded``
right after its commit, once, like a click-to-call (the CRM gets it now, not at the feed's
catch-up scan minutes later); an attempt the agent missed is not announced.

The dialler is the real one over a fake live state, with the ARI application's part played
on the bus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import CallbackPolicy, request_callback
from callcenter.bus import Bus
from callcenter.channels.telephony.clicktocall import (
    ClickToCallProgress,
    ClickToCallRequested,
    State,
)
from callcenter.channels.telephony.dialler import CallbackDialler
from callcenter.channels.telephony.events import CallRecorded
from callcenter.crm.feed import Feed
from callcenter.db import unit_of_work
from callcenter.models import Call, CallOutcome, Interaction
from tests.automation.helpers import make_customer, outbox_rows
from tests.automation.test_callback_live_list import FreeAgent

PHONE = "+79161234567"


@dataclass
class Asterisk:
    """Plays the ARI application: each request goes through ``states``."""

    bus: Bus
    states: list[tuple[State, str]]

    async def __call__(self, request: ClickToCallRequested) -> None:
        for state, reason in self.states:
            self.bus.publish(
                ClickToCallProgress(
                    request.request_id, request.agent_endpoint, request.number, state, reason
                )
            )


async def _dial(
    sessions: async_sessionmaker[AsyncSession], states: list[tuple[State, str]]
) -> list[CallRecorded]:
    """Dial one due callback through the fake application; the CallRecorded published."""
    customer_id = await make_customer(sessions, phone=PHONE)
    async with unit_of_work(sessions) as session:
        await request_callback(
            session,
            customer_id=customer_id,
            ticket_id=None,
            phone=PHONE,
            channel="call",
            due_at=datetime.now(UTC) - timedelta(minutes=1),
            queue="support",
        )
    bus = Bus()
    recorded: list[CallRecorded] = []

    async def collect(event: CallRecorded) -> None:
        recorded.append(event)

    bus.subscribe(CallRecorded, collect)
    Feed(sessions, crm=True).subscribe(bus)
    bus.subscribe(ClickToCallRequested, Asterisk(bus, states))
    dialler = CallbackDialler(sessions, bus, FreeAgent(), policy=CallbackPolicy(max_attempts=3))
    assert await dialler.run_once() == 1
    await dialler.drain()
    await bus.drain()
    return recorded


async def test_a_callback_attempt_stored_is_announced_once_and_fed_to_the_crm(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    recorded = await _dial(
        sessions,
        [
            (State.AGENT_RINGING, ""),
            (State.CUSTOMER_RINGING, ""),
            (State.FAILED, "customer: User busy"),
        ],
    )

    async with sessions() as session:
        [(interaction, call)] = (
            await session.execute(
                select(Interaction, Call).join(Call, Call.interaction_id == Interaction.id)
            )
        ).all()
    assert [(r.interaction_id, r.linkedid, r.outcome, r.queue) for r in recorded] == [
        (interaction.id, call.linkedid, CallOutcome.BUSY, "support")
    ]
    [push] = [r.payload["call"] for r in await outbox_rows(sessions) if r.channel == "crm"]
    assert (push["interaction_id"], push["outbound"], push["outcome"]) == (
        interaction.id,
        True,
        "busy",
    )


async def test_an_attempt_the_agent_missed_is_not_announced(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    recorded = await _dial(
        sessions, [(State.AGENT_RINGING, ""), (State.FAILED, "agent: Call Rejected")]
    )
    assert recorded == []

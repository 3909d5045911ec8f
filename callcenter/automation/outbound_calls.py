"""Our outbound calls in the customer's history: callback attempts and agents' click-to-calls.

Each is one Interaction (channel ``call``, direction outbound, ``external_id`` the call's
Linkedid) and one Call row, stored once per Linkedid through callrows.insert_once, like an
inbound call: a second recording of the same call stores nothing, and whoever stored it
publishes the CallRecorded it got back after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telephony.callrows import insert_once, stored_call
from callcenter.channels.telephony.events import CallRecorded
from callcenter.domain.customers import resolve_customer
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Direction,
    IdentityKind,
    Interaction,
    Ticket,
    User,
)

OUTBOUND_OUTCOMES = frozenset(
    {CallOutcome.ANSWERED, CallOutcome.NO_ANSWER, CallOutcome.BUSY, CallOutcome.FAILED}
)
_RESULT_TEXT = {
    CallOutcome.ANSWERED: "разговор {talk} с",
    CallOutcome.NO_ANSWER: "не ответил",
    CallOutcome.BUSY: "занято",
    CallOutcome.FAILED: "не удалось дозвониться",
}
CLICK_TO_CALL_TITLE = "Исходящий звонок"
CALLBACK_TITLE = "Обратный звонок"


@dataclass(frozen=True)
class OutboundCall:
    """A finished call we placed to ``phone`` (E.164), as it goes into the history."""

    linkedid: str
    customer_id: int
    phone: str
    agent_endpoint: str
    outcome: CallOutcome
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    title: str
    """What the history line starts with: ``Обратный звонок`` / ``Исходящий звонок``."""
    ticket_id: int | None = None
    queue: str | None = None


async def store_outbound_call(
    session: AsyncSession, call: OutboundCall
) -> tuple[Interaction, CallRecorded | None]:
    """The call's interaction, and the CallRecorded to publish after the commit if this call
    stored it (None: it was stored before).

    Talk seconds run from the answer to the end, for an answered call only."""
    if call.outcome not in OUTBOUND_OUTCOMES:
        raise ValueError(f"{call.outcome} is no outcome of an outbound call")
    agent_id = await session.scalar(select(User.id).where(User.sip_endpoint == call.agent_endpoint))
    answered = call.answered_at if call.outcome is CallOutcome.ANSWERED else None
    talk = max(0, round((call.ended_at - answered).total_seconds())) if answered else 0
    result = _RESULT_TEXT[call.outcome].format(talk=talk)
    interaction = Interaction(
        customer_id=call.customer_id,
        ticket_id=call.ticket_id,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        external_id=call.linkedid,
        text=f"{call.title} на {call.phone}: {result}",
        agent_id=agent_id,
        occurred_at=call.started_at,
    )
    row = Call(
        linkedid=call.linkedid,
        queue=call.queue,
        agent_id=agent_id,
        agent_endpoint=call.agent_endpoint,
        caller_number=call.phone,
        wait_seconds=0,
        talk_seconds=talk,
        outcome=call.outcome,
        started_at=call.started_at,
        answered_at=answered,
        ended_at=call.ended_at,
    )
    return await insert_once(session, interaction, row)


@dataclass(frozen=True)
class ClickToCallEnded:
    """A click-to-call that reached the customer's side, as the ARI application saw it end."""

    linkedid: str
    agent_endpoint: str
    phone: str
    """E.164, as dialled."""
    outcome: CallOutcome
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    ticket_id: int | None = None
    """The ticket the agent called from, if any."""


async def record_click_to_call(
    session: AsyncSession, ended: ClickToCallEnded, region: str = "RU"
) -> tuple[Interaction, CallRecorded | None]:
    """Store a click-to-call in the history of the customer owning the number (a new profile
    for a number nobody owns, as for an inbound call), in the thread of the ticket the agent
    called from if that ticket is the customer's; the caller commits."""
    existing = await stored_call(session, ended.linkedid)
    if existing is not None:
        return existing, None
    customer, _ = await resolve_customer(
        session, IdentityKind.PHONE, ended.phone, source="call", region=region
    )
    call = OutboundCall(
        linkedid=ended.linkedid,
        customer_id=customer.id,
        phone=ended.phone,
        agent_endpoint=ended.agent_endpoint,
        outcome=ended.outcome,
        started_at=ended.started_at,
        answered_at=ended.answered_at,
        ended_at=ended.ended_at,
        title=CLICK_TO_CALL_TITLE,
        ticket_id=await _customers_ticket(session, ended.ticket_id, customer.id),
    )
    return await store_outbound_call(session, call)


async def _customers_ticket(
    session: AsyncSession, ticket_id: int | None, customer_id: int
) -> int | None:
    """``ticket_id`` if it is a ticket of this customer (still, after any merge), else None."""
    if ticket_id is None:
        return None
    owner = await session.scalar(select(Ticket.customer_id).where(Ticket.id == ticket_id))
    return ticket_id if owner == customer_id else None

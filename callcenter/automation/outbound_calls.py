"""Our outbound calls in the customer's history: callback attempts and agents' click-to-calls.

Each is one Interaction (channel ``call``, direction outbound, ``external_id`` the call's
Linkedid) and one Call row, stored once per Linkedid: a second recording of the same call (an
event replayed after a reconnect, a handler run again after a crash) finds the first and
stores nothing, and of two transactions racing the unique constraints let one win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain.customers import resolve_customer
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Direction,
    IdentityKind,
    Interaction,
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


async def stored_call(session: AsyncSession, linkedid: str) -> Interaction | None:
    return await session.scalar(
        select(Interaction).where(
            Interaction.channel == Channel.CALL, Interaction.external_id == linkedid
        )
    )


async def store_outbound_call(
    session: AsyncSession, call: OutboundCall
) -> tuple[Interaction, bool]:
    """The call's interaction, and whether this call stored it (False: it was stored before).

    Talk seconds run from the answer to the end, for an answered call only."""
    if call.outcome not in OUTBOUND_OUTCOMES:
        raise ValueError(f"{call.outcome} is no outcome of an outbound call")
    existing = await stored_call(session, call.linkedid)
    if existing is not None:
        return existing, False
    agent_id = await session.scalar(select(User.id).where(User.sip_endpoint == call.agent_endpoint))
    answered = call.answered_at if call.outcome is CallOutcome.ANSWERED else None
    talk = max(0, round((call.ended_at - answered).total_seconds())) if answered else 0
    result = _RESULT_TEXT[call.outcome].format(talk=talk)
    try:
        async with session.begin_nested():
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
            session.add(interaction)
            await session.flush()
            session.add(
                Call(
                    interaction_id=interaction.id,
                    linkedid=call.linkedid,
                    queue=call.queue,
                    agent_id=agent_id,
                    agent_endpoint=call.agent_endpoint,
                    caller_number=call.phone,
                    talk_seconds=talk,
                    outcome=call.outcome,
                    started_at=call.started_at,
                    answered_at=answered,
                    ended_at=call.ended_at,
                )
            )
            await session.flush()
    except IntegrityError:  # another transaction stored this Linkedid first: its record stands
        raced = await stored_call(session, call.linkedid)
        if raced is None:
            raise
        return raced, False
    return interaction, True


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


async def record_click_to_call(
    session: AsyncSession, ended: ClickToCallEnded, region: str = "RU"
) -> tuple[Interaction, bool]:
    """Store a click-to-call in the history of the customer owning the number (a new profile
    for a number nobody owns, as for an inbound call); the caller commits."""
    existing = await stored_call(session, ended.linkedid)
    if existing is not None:
        return existing, False
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
    )
    return await store_outbound_call(session, call)

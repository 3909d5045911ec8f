"""One call in the customer's history: an Interaction and a Call row, inserted once per Linkedid.

Inbound calls (records.py) and our outbound calls (automation/outbound_calls.py) both go
through `insert_once`: a second recording of the same Linkedid (an event replayed after a
reconnect, a handler run again after a crash) finds the first and inserts nothing, and of two
transactions racing, the unique constraints let one win. Whoever inserted the call publishes
the `CallRecorded` it returns, after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telephony.events import CallRecorded
from callcenter.models import Call, Channel, Interaction


async def stored_call(session: AsyncSession, linkedid: str) -> Interaction | None:
    """The interaction already stored for this Linkedid, if any."""
    return await session.scalar(
        select(Interaction).where(
            Interaction.channel == Channel.CALL, Interaction.external_id == linkedid
        )
    )


def recorded(interaction: Interaction, call: Call) -> CallRecorded:
    """The event announcing a newly stored call."""
    return CallRecorded(
        interaction_id=interaction.id,
        customer_id=interaction.customer_id,
        agent_id=interaction.agent_id,
        linkedid=call.linkedid,
        queue=call.queue,
        caller_number=call.caller_number,
        outcome=call.outcome,
        wait_seconds=call.wait_seconds or 0,
        at=call.ended_at,
    )


async def insert_once(
    session: AsyncSession,
    interaction: Interaction,
    call: Call,
    *,
    prepare: Callable[[Interaction], Awaitable[None]] | None = None,
) -> tuple[Interaction, CallRecorded | None]:
    """Insert the call (in a savepoint) unless its Linkedid is stored: the call's interaction,
    and the CallRecorded to publish after the commit when this insert stored it.

    ``prepare`` runs inside the savepoint before the insert (e.g. creating the customer the
    interaction belongs to), so a lost race leaves nothing of it behind."""
    existing = await stored_call(session, call.linkedid)
    if existing is not None:
        return existing, None
    try:
        async with session.begin_nested():
            if prepare is not None:
                await prepare(interaction)
            session.add(interaction)
            await session.flush()
            call.interaction_id = interaction.id
            session.add(call)
            await session.flush()
    except IntegrityError:  # another transaction stored this Linkedid first: its record stands
        raced = await stored_call(session, call.linkedid)
        if raced is None:
            raise
        return raced, None
    return interaction, recorded(interaction, call)

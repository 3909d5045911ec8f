"""Domain changes → what leaves for the outside: signed webhooks to every subscription, and
pushes to the CRM when one is configured. Both are outbox rows written in one transaction."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.events import TicketSolved
from callcenter.bus import Bus
from callcenter.channels.telephony.events import CallRecorded
from callcenter.crm.links import RecordingLinks
from callcenter.crm.sender import enqueue_push
from callcenter.crm.webhooks import enqueue_event
from callcenter.domain.events import AgentReplied, MessageReceived, TicketCreated
from callcenter.models import (
    Call,
    CallOutcome,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Ticket,
    User,
    utcnow,
)

log = logging.getLogger(__name__)


async def customer_data(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    customer = await session.get(Customer, customer_id)
    identities = list(
        await session.scalars(
            select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.id)
        )
    )
    return {
        "id": customer_id,
        "name": customer.display_name if customer else "",
        "phones": [i.value for i in identities if i.kind is IdentityKind.PHONE],
        "emails": [i.value for i in identities if i.kind is IdentityKind.EMAIL],
    }


def ticket_data(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "status": ticket.status.value,
        "subject": ticket.subject,
        "channel": ticket.channel.value,
        "created_at": ticket.created_at.isoformat(),
        "solved_at": ticket.solved_at.isoformat() if ticket.solved_at else None,
    }


async def first_interaction(session: AsyncSession, ticket_id: int) -> Interaction | None:
    return await session.scalar(
        select(Interaction)
        .where(Interaction.ticket_id == ticket_id)
        .order_by(Interaction.occurred_at, Interaction.id)
        .limit(1)
    )


class Handled:
    """The latest rows whose changes this process has queued (source, key as the catch-up
    orders them), so that the scan does not build them again; bounded, oldest forgotten."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._keys: OrderedDict[tuple[str, tuple[Any, ...]], None] = OrderedDict()

    def add(self, source: str, key: tuple[Any, ...]) -> None:
        self._keys[(source, key)] = None
        self._keys.move_to_end((source, key))
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)

    def __contains__(self, item: tuple[str, tuple[Any, ...]]) -> bool:
        return item in self._keys


class Feed:
    """What leaves for each domain change, queued at most once per change (see ``once``): by
    the bus handlers right after the commit, and by ``catchup.CatchUp`` for whatever a crash
    kept them from queueing."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        crm: bool,
        links: RecordingLinks | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.crm = crm
        self.links = links
        self.now = now
        self.handled = Handled()

    def subscribe(self, bus: Bus) -> Callable[[], None]:
        undo = [
            bus.subscribe(TicketCreated, self.on_ticket_created),
            bus.subscribe(MessageReceived, self.on_message),
            bus.subscribe(AgentReplied, self.on_agent_replied),
            bus.subscribe(CallRecorded, self.on_call),
            bus.subscribe(TicketSolved, self.on_ticket_solved),
        ]

        def unsubscribe() -> None:
            for undo_one in undo:
                undo_one()

        return unsubscribe

    async def _queue(
        self, source: str, key: tuple[Any, ...], step: Callable[[AsyncSession], Awaitable[None]]
    ) -> None:
        try:
            async with self.sessions() as session, session.begin():
                await step(session)
        except IntegrityError:
            log.info("the catch-up scan queued the same change first")
        self.handled.add(source, key)

    async def on_ticket_created(self, event: TicketCreated) -> None:
        ticket_id = event.ticket_id
        await self._queue("tickets", (ticket_id,), lambda s: self.ticket_created(s, ticket_id))

    async def on_message(self, event: MessageReceived) -> None:
        message_id = event.interaction_id
        await self._queue("messages", (message_id,), lambda s: self.message(s, message_id))

    async def on_agent_replied(self, event: AgentReplied) -> None:
        reply_id = event.interaction_id
        await self._queue("messages", (reply_id,), lambda s: self.reply(s, reply_id))

    async def on_call(self, event: CallRecorded) -> None:
        call_id = event.interaction_id
        await self._queue("calls", (call_id,), lambda s: self.call(s, call_id))

    async def on_ticket_solved(self, event: TicketSolved) -> None:
        key = (event.at, event.ticket_id)
        await self._queue("solved", key, lambda s: self.ticket_solved(s, event.ticket_id))

    def _crm_ticket(self, ticket: Ticket, customer: dict[str, Any], text: str) -> dict[str, Any]:
        return {
            "ticket_id": ticket.id,
            "subject": ticket.subject,
            "text": text,
            "channel": ticket.channel.value,
            "contact": {k: customer[k] for k in ("name", "phones", "emails")},
        }

    async def ticket_created(self, session: AsyncSession, ticket_id: int) -> None:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            return
        customer = await customer_data(session, ticket.customer_id)
        first = await first_interaction(session, ticket.id)
        data = {"ticket": ticket_data(ticket), "customer": customer}
        await enqueue_event(
            session, "ticket.created", str(ticket.id), data, self.now(), ticket_id=ticket.id
        )
        if self.crm:
            crm_ticket = self._crm_ticket(ticket, customer, first.text if first else "")
            await enqueue_push(
                session, ticket.customer_id, "ticket", f"ticket:{ticket.id}", ticket=crm_ticket
            )

    async def message(self, session: AsyncSession, interaction_id: int) -> None:
        """A customer's message: a webhook, and a comment on the ticket's CRM lead."""
        message = await session.get(Interaction, interaction_id)
        if message is not None and message.direction is Direction.INBOUND:
            await self._received(session, message)

    async def _received(self, session: AsyncSession, message: Interaction) -> None:
        customer = await customer_data(session, message.customer_id)
        automatic = message.ticket_id is None  # only automatic mail is filed without a ticket
        data = {
            "message": {
                "id": message.id,
                "ticket_id": message.ticket_id,
                "channel": message.channel.value,
                "text": message.text,
                "occurred_at": message.occurred_at.isoformat(),
                "intents": list(message.intents or []),
                "order_numbers": list(message.order_numbers or []),
                "automatic": automatic,
            },
            "customer": customer,
        }
        await enqueue_event(
            session,
            "message.received",
            str(message.id),
            data,
            self.now(),
            ticket_id=message.ticket_id,
            customer_id=message.customer_id,
        )
        if not self.crm or message.ticket_id is None:
            return
        first = await first_interaction(session, message.ticket_id)
        if first is None or first.id == message.id:
            return  # the ticket's lead already carries its first message
        ticket = await session.get(Ticket, message.ticket_id)
        if ticket is None:
            return
        await enqueue_push(
            session,
            message.customer_id,
            "message",
            f"message:{message.id}",
            ticket=self._crm_ticket(ticket, customer, first.text),
            message={
                "interaction_id": message.id,
                "ticket_id": ticket.id,
                "channel": message.channel.value,
                "text": message.text,
            },
        )

    async def reply(self, session: AsyncSession, interaction_id: int) -> None:
        """An agent's reply goes to the CRM next to the customer's messages (not a webhook)."""
        reply = await session.get(Interaction, interaction_id)
        if not self.crm or reply is None or reply.ticket_id is None:
            return
        ticket = await session.get(Ticket, reply.ticket_id)
        if ticket is None:
            return
        customer = await customer_data(session, ticket.customer_id)
        first = await first_interaction(session, ticket.id)
        await enqueue_push(
            session,
            ticket.customer_id,
            "message",
            f"message:{reply.id}",
            ticket=self._crm_ticket(ticket, customer, first.text if first else ""),
            message={
                "interaction_id": reply.id,
                "ticket_id": ticket.id,
                "channel": reply.channel.value,
                "text": reply.text,
                "outbound": True,
            },
        )

    async def call(self, session: AsyncSession, interaction_id: int) -> None:
        call = await session.get(Call, interaction_id)
        interaction = await session.get(Interaction, interaction_id)
        if call is None or interaction is None:
            return
        agent = await session.get(User, call.agent_id) if call.agent_id else None
        recording = (
            self.links.url(call.interaction_id) if call.recording_path and self.links else ""
        )
        data = {
            "call": {
                "interaction_id": call.interaction_id,
                "linkedid": call.linkedid,
                "queue": call.queue,
                "caller_number": call.caller_number,
                "direction": interaction.direction.value,
                "outcome": call.outcome.value,
                "wait_seconds": call.wait_seconds,
                "talk_seconds": call.talk_seconds,
                "started_at": call.started_at.isoformat(),
                "answered_at": call.answered_at.isoformat() if call.answered_at else None,
                "ended_at": call.ended_at.isoformat() if call.ended_at else None,
                "agent": agent.username if agent else None,
                "recording_url": recording or None,
            },
            "customer": await customer_data(session, interaction.customer_id),
        }
        await enqueue_event(
            session,
            "call.ended",
            str(call.interaction_id),
            data,
            self.now(),
            ticket_id=interaction.ticket_id,
            customer_id=interaction.customer_id,
        )
        if self.crm and call.caller_number:
            push = {
                "interaction_id": call.interaction_id,
                "phone": call.caller_number,
                "started_at": call.started_at.isoformat(timespec="seconds"),
                "duration_seconds": call.talk_seconds,
                "answered": call.outcome is CallOutcome.ANSWERED,
                "recording_url": recording,
                "contact_name": data["customer"]["name"],
                "agent": agent.username if agent else "",
                "outbound": interaction.direction is Direction.OUTBOUND,
                "outcome": call.outcome.value,
            }
            await enqueue_push(
                session, interaction.customer_id, "call", f"call:{call.interaction_id}", call=push
            )

    async def ticket_solved(self, session: AsyncSession, ticket_id: int) -> None:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None or ticket.solved_at is None:
            return
        data = {
            "ticket": ticket_data(ticket),
            "customer": await customer_data(session, ticket.customer_id),
        }
        solve = f"{ticket.id}:{ticket.solved_at.isoformat()}"  # each solve after a reopening
        await enqueue_event(session, "ticket.solved", solve, data, self.now(), ticket_id=ticket.id)

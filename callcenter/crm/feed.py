"""Domain events → what leaves for the outside: signed webhooks to every subscription, and
pushes to the CRM when one is configured. Both are outbox rows written in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.events import TicketSolved
from callcenter.bus import Bus
from callcenter.channels.telephony.events import CallRecorded
from callcenter.crm.sender import enqueue_push
from callcenter.crm.webhooks import enqueue_event
from callcenter.domain.events import AgentReplied, MessageReceived, TicketCreated
from callcenter.models import (
    Call,
    CallOutcome,
    Customer,
    Identity,
    IdentityKind,
    Interaction,
    Ticket,
    User,
    utcnow,
)


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


class Feed:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        crm: bool,
        public_url: str = "",
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.crm = crm
        self.public_url = public_url.rstrip("/")
        self.now = now

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

    def _crm_ticket(self, ticket: Ticket, customer: dict[str, Any], text: str) -> dict[str, Any]:
        return {
            "ticket_id": ticket.id,
            "subject": ticket.subject,
            "text": text,
            "channel": ticket.channel.value,
            "contact": {k: customer[k] for k in ("name", "phones", "emails")},
        }

    async def on_ticket_created(self, event: TicketCreated) -> None:
        async with self.sessions() as session, session.begin():
            ticket = await session.get(Ticket, event.ticket_id)
            if ticket is None:
                return
            customer = await customer_data(session, event.customer_id)
            first = await first_interaction(session, ticket.id)
            data = {"ticket": ticket_data(ticket), "customer": customer}
            await enqueue_event(session, "ticket.created", data, self.now(), ticket_id=ticket.id)
            if self.crm:
                crm_ticket = self._crm_ticket(ticket, customer, first.text if first else "")
                enqueue_push(session, event.customer_id, "ticket", ticket=crm_ticket)

    async def on_message(self, event: MessageReceived) -> None:
        async with self.sessions() as session, session.begin():
            message = await session.get(Interaction, event.interaction_id)
            if message is None:
                return
            customer = await customer_data(session, event.customer_id)
            data = {
                "message": {
                    "id": message.id,
                    "ticket_id": message.ticket_id,
                    "channel": message.channel.value,
                    "text": message.text,
                    "occurred_at": message.occurred_at.isoformat(),
                    "intents": list(message.intents or []),
                    "order_numbers": list(message.order_numbers or []),
                    "automatic": event.automatic,
                },
                "customer": customer,
            }
            await enqueue_event(
                session, "message.received", data, self.now(), ticket_id=message.ticket_id
            )
            if not self.crm or event.automatic or message.ticket_id is None:
                return
            first = await first_interaction(session, message.ticket_id)
            if first is None or first.id == message.id:
                return  # the ticket's lead already carries its first message
            ticket = await session.get(Ticket, message.ticket_id)
            if ticket is None:
                return
            enqueue_push(
                session,
                event.customer_id,
                "message",
                ticket=self._crm_ticket(ticket, customer, first.text),
                message={
                    "interaction_id": message.id,
                    "ticket_id": ticket.id,
                    "channel": message.channel.value,
                    "text": message.text,
                },
            )

    async def on_agent_replied(self, event: AgentReplied) -> None:
        """An agent's reply goes to the CRM next to the customer's messages (not a webhook)."""
        if not self.crm:
            return
        async with self.sessions() as session, session.begin():
            reply = await session.get(Interaction, event.interaction_id)
            ticket = await session.get(Ticket, event.ticket_id)
            if reply is None or ticket is None:
                return
            customer = await customer_data(session, ticket.customer_id)
            first = await first_interaction(session, ticket.id)
            enqueue_push(
                session,
                ticket.customer_id,
                "message",
                ticket=self._crm_ticket(ticket, customer, first.text if first else ""),
                message={
                    "interaction_id": reply.id,
                    "ticket_id": ticket.id,
                    "channel": reply.channel.value,
                    "text": reply.text,
                    "outbound": True,
                },
            )

    async def on_call(self, event: CallRecorded) -> None:
        async with self.sessions() as session, session.begin():
            call = await session.get(Call, event.interaction_id)
            if call is None:
                return
            agent = await session.get(User, call.agent_id) if call.agent_id else None
            recording = (
                f"{self.public_url}/calls/{call.interaction_id}/recording"
                if call.recording_path and self.public_url
                else ""
            )
            data = {
                "call": {
                    "interaction_id": call.interaction_id,
                    "linkedid": call.linkedid,
                    "queue": call.queue,
                    "caller_number": call.caller_number,
                    "outcome": call.outcome.value,
                    "wait_seconds": call.wait_seconds,
                    "talk_seconds": call.talk_seconds,
                    "started_at": call.started_at.isoformat(),
                    "answered_at": call.answered_at.isoformat() if call.answered_at else None,
                    "ended_at": call.ended_at.isoformat() if call.ended_at else None,
                    "agent": agent.username if agent else None,
                    "recording_url": recording or None,
                },
                "customer": await customer_data(session, event.customer_id),
            }
            await enqueue_event(session, "call.ended", data, self.now())
            if self.crm and call.caller_number:
                push = {
                    "interaction_id": call.interaction_id,
                    "phone": call.caller_number,
                    "started_at": call.started_at.isoformat(timespec="seconds"),
                    "duration_seconds": call.talk_seconds,
                    "answered": call.outcome is CallOutcome.ANSWERED,
                    "recording_url": recording,
                    "contact_name": data["customer"]["name"],
                }
                enqueue_push(session, event.customer_id, "call", call=push)

    async def on_ticket_solved(self, event: TicketSolved) -> None:
        async with self.sessions() as session, session.begin():
            ticket = await session.get(Ticket, event.ticket_id)
            if ticket is None:
                return
            data = {
                "ticket": ticket_data(ticket),
                "customer": await customer_data(session, event.customer_id),
            }
            await enqueue_event(session, "ticket.solved", data, self.now(), ticket_id=ticket.id)

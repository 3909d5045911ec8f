"""Storing an inbound message from any channel: customer, classification, ticket, interaction.

Every channel adapter (Telegram, email, telephony) turns what it received into an
``InboundMessage`` and calls ``ingest``. A second delivery of the same message (same channel and
external id) is recognised and stored nothing, even when two deliveries race.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.classify import Classification, classify
from callcenter.domain.customers import get_customer, resolve_customer
from callcenter.domain.events import MessageReceived, TicketCreated
from callcenter.models import (
    Channel,
    Customer,
    Direction,
    IdentityKind,
    Interaction,
    OrderRef,
    Ticket,
    TicketStatus,
)

OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
FOLLOW_UP_WINDOW = timedelta(days=7)
"""A message with no intent and no order number joins the newest open ticket this recent."""


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    external_id: str
    identity_kind: IdentityKind
    identity_value: str
    occurred_at: datetime
    text: str
    display_name: str = ""
    subject: str = ""
    html: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    ticket_hint: int | None = None
    """A ticket the channel already knows this belongs to (email threading, ``[#1234]``)."""
    automatic: bool = False
    """Auto-replies, bounces, mailing lists: recorded, but never open or reopen a ticket."""
    language: str = "ru"


@dataclass
class IngestResult:
    interaction: Interaction
    customer: Customer
    ticket: Ticket | None
    duplicate: bool = False
    customer_created: bool = False
    ticket_created: bool = False
    events: list[object] = field(default_factory=list)


async def _existing(
    session: AsyncSession, channel: Channel, external_id: str
) -> Interaction | None:
    return await session.scalar(
        select(Interaction).where(
            Interaction.channel == channel, Interaction.external_id == external_id
        )
    )


async def _duplicate(session: AsyncSession, interaction: Interaction) -> IngestResult:
    customer = await get_customer(session, interaction.customer_id)
    ticket = await session.get(Ticket, interaction.ticket_id) if interaction.ticket_id else None
    return IngestResult(interaction, customer, ticket, duplicate=True)


async def _hinted_ticket(session: AsyncSession, customer: Customer, hint: int) -> Ticket | None:
    ticket = await session.get(Ticket, hint)
    if ticket is None or (await get_customer(session, ticket.customer_id)).id != customer.id:
        return None
    if ticket.status not in OPEN_STATUSES:
        ticket.status = TicketStatus.OPEN
        ticket.solved_at = None
        ticket.reopened_count += 1
    return ticket


async def _matching_ticket(
    session: AsyncSession, customer: Customer, found: Classification, at: datetime
) -> Ticket | None:
    """The customer's open ticket about the same order, else the same intent, else a follow-up."""
    open_tickets = list(
        await session.scalars(
            select(Ticket)
            .where(Ticket.customer_id == customer.id, Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.updated_at.desc())
        )
    )
    orders, intents = set(found.order_numbers), set(found.intents)
    if orders:
        for ticket in open_tickets:
            if orders & set(ticket.order_numbers):
                return ticket
    if intents:
        for ticket in open_tickets:
            if intents & set(ticket.intents) and not (orders and ticket.order_numbers):
                return ticket
    if not orders and not intents and open_tickets:
        newest = open_tickets[0]
        if at - newest.updated_at <= FOLLOW_UP_WINDOW:
            return newest
    return None


def _subject(message: InboundMessage) -> str:
    text = message.subject.strip() or " ".join(message.text.split())
    return text[:200]


async def _remember_orders(
    session: AsyncSession, customer_id: int, ticket_id: int | None, numbers: tuple[str, ...]
) -> None:
    for number in numbers:
        known = await session.scalar(
            select(OrderRef.id).where(
                OrderRef.order_number == number,
                OrderRef.customer_id == customer_id,
                OrderRef.ticket_id == ticket_id,
            )
        )
        if known is None:
            session.add(OrderRef(order_number=number, customer_id=customer_id, ticket_id=ticket_id))


async def _file_under_ticket(
    session: AsyncSession, customer: Customer, message: InboundMessage, found: Classification
) -> tuple[Ticket | None, bool]:
    """The ticket this message belongs to, created if needed; None for automatic mail."""
    if message.automatic:
        return None, False
    ticket = None
    if message.ticket_hint is not None:
        ticket = await _hinted_ticket(session, customer, message.ticket_hint)
    if ticket is None:
        ticket = await _matching_ticket(session, customer, found, message.occurred_at)
    created = ticket is None
    if ticket is None:
        ticket = Ticket(
            customer_id=customer.id,
            channel=message.channel,
            subject=_subject(message),
            created_at=message.occurred_at,
            updated_at=message.occurred_at,
        )
        session.add(ticket)
    ticket.intents = sorted(set(ticket.intents or []) | set(found.intents))
    ticket.order_numbers = list(
        dict.fromkeys([*(ticket.order_numbers or []), *found.order_numbers])
    )
    ticket.updated_at = max(ticket.updated_at or message.occurred_at, message.occurred_at)
    await session.flush()
    return ticket, created


async def ingest(
    session: AsyncSession,
    message: InboundMessage,
    *,
    classifier: Callable[[str], Classification] = classify,
    region: str = "RU",
) -> IngestResult:
    """Store one inbound message once; the caller commits and then publishes ``result.events``."""
    existing = await _existing(session, message.channel, message.external_id)
    if existing is not None:
        return await _duplicate(session, existing)

    customer, customer_created = await resolve_customer(
        session,
        message.identity_kind,
        message.identity_value,
        display_name=message.display_name,
        source=message.channel.value,
        language=message.language,
        region=region,
    )
    found = classifier("\n".join(filter(None, [message.subject, message.text])))

    try:
        async with session.begin_nested():
            ticket, ticket_created = await _file_under_ticket(session, customer, message, found)
            interaction = Interaction(
                customer_id=customer.id,
                ticket_id=ticket.id if ticket else None,
                channel=message.channel,
                direction=Direction.INBOUND,
                external_id=message.external_id,
                text=message.text,
                html=message.html,
                attachments=message.attachments,
                intents=list(found.intents),
                order_numbers=list(found.order_numbers),
                occurred_at=message.occurred_at,
            )
            session.add(interaction)
    except IntegrityError:
        # Another delivery of the same message committed first: drop our ticket work too.
        raced = await _existing(session, message.channel, message.external_id)
        if raced is None:
            raise
        return await _duplicate(session, raced)
    await _remember_orders(session, customer.id, ticket.id if ticket else None, found.order_numbers)

    result = IngestResult(
        interaction,
        customer,
        ticket,
        customer_created=customer_created,
        ticket_created=ticket_created,
    )
    if ticket_created and ticket is not None:
        result.events.append(TicketCreated(ticket.id, customer.id, message.channel))
    result.events.append(
        MessageReceived(
            customer_id=customer.id,
            ticket_id=ticket.id if ticket else None,
            interaction_id=interaction.id,
            channel=message.channel,
            intents=found.intents,
            order_numbers=found.order_numbers,
            occurred_at=message.occurred_at,
            automatic=message.automatic,
        )
    )
    return result

"""What agents do to tickets: reply, change status, assign, set intents."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.events import TicketSolved
from callcenter.domain import audit
from callcenter.domain.errors import DomainError, NotFound
from callcenter.domain.events import AgentReplied
from callcenter.models import Channel, Direction, Interaction, Ticket, TicketStatus, User


async def record_reply(
    session: AsyncSession,
    ticket_id: int,
    *,
    channel: Channel,
    text: str,
    at: datetime,
    agent_id: int | None = None,
    html: str | None = None,
    external_id: str | None = None,
) -> tuple[Interaction, AgentReplied]:
    """Store an agent's answer on a ticket; the first one sets the first-response time."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket with id {ticket_id}")
    direction = Direction.INTERNAL if channel is Channel.NOTE else Direction.OUTBOUND
    interaction = Interaction(
        customer_id=ticket.customer_id,
        ticket_id=ticket.id,
        channel=channel,
        direction=direction,
        external_id=external_id,
        text=text,
        html=html,
        agent_id=agent_id,
        occurred_at=at,
    )
    session.add(interaction)
    if direction is Direction.OUTBOUND:
        if ticket.first_response_at is None:
            ticket.first_response_at = at
        if ticket.status is TicketStatus.NEW:
            ticket.status = TicketStatus.OPEN
        ticket.updated_at = at
    await session.flush()
    return interaction, AgentReplied(ticket.id, interaction.id, agent_id, channel)


INTENT_NAME = re.compile(r"[a-z][a-z_]{0,39}")
_CLOSED = (TicketStatus.SOLVED, TicketStatus.CLOSED)


class InvalidIntent(DomainError):
    code = "invalid-intent"


class UnknownAssignee(DomainError):
    code = "unknown-assignee"


async def _ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket with id {ticket_id}")
    return ticket


async def set_status(
    session: AsyncSession,
    ticket_id: int,
    status: TicketStatus,
    *,
    at: datetime,
    actor: User | None = None,
) -> TicketSolved | None:
    """Change the status; solving stamps ``solved_at`` and returns the event to publish after
    commit, reopening a solved or closed ticket counts in ``reopened_count``."""
    ticket = await _ticket(session, ticket_id)
    before = ticket.status
    if status is before:
        return None
    ticket.status = status
    ticket.updated_at = at
    event = None
    if status is TicketStatus.SOLVED and before is not TicketStatus.CLOSED:
        ticket.solved_at = at
        event = TicketSolved(ticket.id, ticket.customer_id, at)
    elif before in _CLOSED and status not in _CLOSED:
        ticket.reopened_count += 1
        ticket.solved_at = None
    audit.record(
        session,
        "ticket.status",
        actor=actor,
        target_type="ticket",
        target_id=ticket.id,
        details={"from": before.value, "to": status.value},
    )
    await session.flush()
    return event


async def assign(
    session: AsyncSession,
    ticket_id: int,
    assignee_id: int | None,
    *,
    at: datetime,
    actor: User | None = None,
) -> Ticket:
    """Give the ticket to an active user, or to nobody (``None``)."""
    ticket = await _ticket(session, ticket_id)
    if assignee_id is not None:
        assignee = await session.get(User, assignee_id)
        if assignee is None or not assignee.active:
            raise UnknownAssignee(f"no active user with id {assignee_id}")
    if ticket.assignee_id != assignee_id:
        audit.record(
            session,
            "ticket.assign",
            actor=actor,
            target_type="ticket",
            target_id=ticket.id,
            details={"from": ticket.assignee_id, "to": assignee_id},
        )
        ticket.assignee_id = assignee_id
        ticket.updated_at = at
    await session.flush()
    return ticket


async def set_intents(
    session: AsyncSession,
    ticket_id: int,
    intents: list[str],
    *,
    at: datetime,
    actor: User | None = None,
) -> Ticket:
    """Replace the ticket's intents (names as in the classifier's patterns, duplicates dropped)."""
    cleaned = list(dict.fromkeys(name.strip() for name in intents))
    for name in cleaned:
        if not INTENT_NAME.fullmatch(name):
            raise InvalidIntent(f"not an intent name: {name!r} (latin a-z and _, up to 40)")
    ticket = await _ticket(session, ticket_id)
    if cleaned != list(ticket.intents):
        audit.record(
            session,
            "ticket.intents",
            actor=actor,
            target_type="ticket",
            target_id=ticket.id,
            details={"from": list(ticket.intents), "to": cleaned},
        )
        ticket.intents = cleaned
        ticket.updated_at = at
    await session.flush()
    return ticket

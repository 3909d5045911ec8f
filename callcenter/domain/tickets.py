"""What agents do to tickets: reply, change status."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain.errors import NotFound
from callcenter.domain.events import AgentReplied
from callcenter.models import Channel, Direction, Interaction, Ticket, TicketStatus


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

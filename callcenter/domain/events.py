"""Domain events: what changed, published on the bus after the transaction commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callcenter.models import Channel


@dataclass(frozen=True)
class MessageReceived:
    customer_id: int
    ticket_id: int | None
    interaction_id: int
    channel: Channel
    intents: tuple[str, ...]
    order_numbers: tuple[str, ...]
    occurred_at: datetime
    automatic: bool


@dataclass(frozen=True)
class TicketCreated:
    ticket_id: int
    customer_id: int
    channel: Channel


@dataclass(frozen=True)
class AgentReplied:
    ticket_id: int
    interaction_id: int
    agent_id: int | None
    channel: Channel

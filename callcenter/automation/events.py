"""Events the automation reacts to that the core domain does not define (yet).

The telephony adapter publishes ``CallEnded`` and ``CallAbandoned``, the agent workspace
``WrapUpSaved`` and ``TicketSolved``; ``SurveyAnswered`` comes from ``surveys.record_answer``.
All are published on the bus after the transaction that stored them commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CallEnded:
    interaction_id: int
    ticket_id: int | None
    customer_id: int
    agent_id: int | None
    answered: bool
    at: datetime


@dataclass(frozen=True)
class CallAbandoned:
    interaction_id: int
    ticket_id: int | None
    customer_id: int
    caller_number: str
    queue: str | None
    wait_seconds: int
    at: datetime


@dataclass(frozen=True)
class WrapUpSaved:
    """An agent finished the after-call work of an answered call."""

    interaction_id: int
    ticket_id: int | None
    agent_id: int | None
    disposition: str
    summary: str
    tracker_url: str = ""


@dataclass(frozen=True)
class TicketSolved:
    ticket_id: int
    customer_id: int
    at: datetime


@dataclass(frozen=True)
class SurveyAnswered:
    answer_id: int
    ticket_id: int
    customer_id: int
    score: int
    channel: str

"""Telephony domain events, published on the bus by the live state (see state.py).

They carry plain values only (no AMI dicts), so subscribers (screen-pop, supervisor stream,
call recorder) never depend on Asterisk's wire format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from callcenter.models import CallOutcome


class AgentState(enum.StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    PAUSED = "paused"
    WRAPUP = "wrapup"


@dataclass(frozen=True, slots=True)
class CallerJoined:
    queue: str
    linkedid: str
    uniqueid: str
    caller_number: str
    caller_name: str
    position: int
    at: datetime


@dataclass(frozen=True, slots=True)
class AgentRinging:
    """An agent's phone started ringing with a queued caller: the screen-pop trigger."""

    interface: str
    agent_name: str
    queue: str
    linkedid: str
    caller_number: str
    caller_name: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CallAnswered:
    linkedid: str
    queue: str
    interface: str
    agent_name: str
    caller_number: str
    caller_name: str
    wait_seconds: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CallerAbandoned:
    """The caller hung up while waiting in the queue."""

    linkedid: str
    queue: str
    caller_number: str
    caller_name: str
    position: int
    wait_seconds: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The caller's channel is gone: the call's final record, published once per Linkedid."""

    linkedid: str
    queue: str | None
    caller_number: str
    caller_name: str
    agent_interface: str | None
    wait_seconds: int
    talk_seconds: int
    outcome: CallOutcome
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    interface: str
    state: AgentState
    reason: str
    since: datetime


@dataclass(frozen=True, slots=True)
class QueueChanged:
    """Callers or members of the queue changed: re-read its snapshot."""

    queue: str


@dataclass(frozen=True, slots=True)
class CallRecorded:
    """A finished call was stored: published after the commit, once per Linkedid."""

    interaction_id: int
    customer_id: int
    agent_id: int | None
    linkedid: str
    queue: str | None
    caller_number: str
    outcome: CallOutcome
    wait_seconds: int
    at: datetime

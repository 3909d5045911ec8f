"""Callback tasks: outbound calls to offer to the next free agent.

They are ``CallbackRequest`` rows, the same table the Telegram "call me" button fills. Placing
the call through Asterisk is the telephony's dialler (channels/telephony/dialler.py): it
``claim_callback``s a due one for a free agent (row locked: SKIP LOCKED on PostgreSQL, an
IMMEDIATE transaction on SQLite, so two diallers never take the same row), rings, and reports
with ``finish_attempt``. A claim is a lease: if the dialler dies mid-call, the row becomes
claimable again when the lease lapses.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.outbound_calls import CALLBACK_TITLE, OutboundCall, store_outbound_call
from callcenter.channels.telegram.models import (
    OPEN_CALLBACK_STATUSES,
    CallbackRequest,
    CallbackStatus,
)
from callcenter.channels.telephony.events import CallRecorded
from callcenter.config import ConfigError, Settings
from callcenter.models import CallOutcome


async def request_callback(
    session: AsyncSession,
    *,
    customer_id: int,
    ticket_id: int | None,
    phone: str,
    channel: str,
    due_at: datetime,
    note: str = "",
    queue: str = "",
) -> CallbackRequest:
    request = CallbackRequest(
        queue=queue,
        customer_id=customer_id,
        ticket_id=ticket_id,
        phone=phone,
        channel=channel,
        status=CallbackStatus.REQUESTED,
        created_at=due_at,
        due_at=due_at,
        note=note,
    )
    session.add(request)
    await session.flush()
    return request


async def open_callback(session: AsyncSession, customer_id: int) -> CallbackRequest | None:
    """The customer's callback still waiting to be made, if any."""
    return await session.scalar(
        select(CallbackRequest)
        .where(
            CallbackRequest.customer_id == customer_id,
            CallbackRequest.status.in_(OPEN_CALLBACK_STATUSES),
        )
        .limit(1)
    )


async def pending_callbacks(session: AsyncSession) -> list[CallbackRequest]:
    """Callbacks nobody has taken yet, oldest due first; those without a phone are left out."""
    return list(
        await session.scalars(
            select(CallbackRequest)
            .where(
                CallbackRequest.status == CallbackStatus.REQUESTED,
                CallbackRequest.phone != "",
            )
            .order_by(CallbackRequest.due_at, CallbackRequest.id)
        )
    )


@dataclass(frozen=True)
class CallbackChanged:
    """Published on the bus when a callback is created, claimed or finished (the live list)."""

    callback_id: int
    status: CallbackStatus


class DialOutcome(enum.StrEnum):
    CONNECTED = "connected"
    """The agent and the customer talked."""
    NO_ANSWER = "no_answer"
    """The customer's phone rang and nobody took the call."""
    BUSY = "busy"
    """The customer's line was busy."""
    FAILED = "failed"
    """The customer could not be reached (the trunk or the network refused the call)."""
    AGENT_MISSED = "agent_missed"
    """The agent's phone did not take the call; the customer was not bothered."""
    REFUSED = "refused"
    """The number cannot be dialled."""


CUSTOMER_SIDE = frozenset({DialOutcome.NO_ANSWER, DialOutcome.BUSY, DialOutcome.FAILED})
"""Attempts the customer saw (or that reached the trunk): counted and kept in their history."""
CALL_OUTCOMES = {
    DialOutcome.CONNECTED: CallOutcome.ANSWERED,
    DialOutcome.NO_ANSWER: CallOutcome.NO_ANSWER,
    DialOutcome.BUSY: CallOutcome.BUSY,
    DialOutcome.FAILED: CallOutcome.FAILED,
}
"""The outcome an attempt's call is stored with in the customer's history."""


@dataclass(frozen=True)
class CallbackPolicy:
    max_attempts: int = 3
    """Customer rings before the callback is given up as failed."""
    retry_after: timedelta = timedelta(minutes=15)
    agent_retry_after: timedelta = timedelta(seconds=30)
    lease: timedelta = timedelta(minutes=5)
    """Renewed every third of itself while a call goes on; when a dialler dies, the callback
    is taken up again once it lapses."""

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackPolicy:
        """The policy of the ``callback_*`` settings; ConfigError names a value out of range."""
        limits = {
            "callback_max_attempts": (1, 20),
            "callback_retry_minutes": (1, 7 * 24 * 60),
            "callback_agent_retry_seconds": (5, 3600),
            "callback_lease_seconds": (60, 3600),
        }
        for name, (low, high) in limits.items():
            value = getattr(settings, name)
            if not low <= value <= high:
                raise ConfigError(f"{name}: {value} is not between {low} and {high}")
        return cls(
            max_attempts=settings.callback_max_attempts,
            retry_after=timedelta(minutes=settings.callback_retry_minutes),
            agent_retry_after=timedelta(seconds=settings.callback_agent_retry_seconds),
            lease=timedelta(seconds=settings.callback_lease_seconds),
        )


def _claimable(now: datetime, queues: Collection[str] | None):  # type: ignore[no-untyped-def]
    """Due or abandoned by a dialler, with a phone, for one of ``queues`` (None: any)."""
    due = and_(
        CallbackRequest.status == CallbackStatus.REQUESTED,
        or_(CallbackRequest.due_at.is_(None), CallbackRequest.due_at <= now),
    )
    abandoned = and_(
        CallbackRequest.status == CallbackStatus.ASSIGNED,
        CallbackRequest.lease_until.is_not(None),
        CallbackRequest.lease_until < now,
    )
    claimable = and_(or_(due, abandoned), CallbackRequest.phone != "")
    if queues is None:
        return claimable
    return and_(
        claimable, or_(CallbackRequest.queue == "", CallbackRequest.queue.in_(list(queues)))
    )


async def due_queues(session: AsyncSession, now: datetime) -> dict[str, int]:
    """How many callbacks could be claimed now, per queue ("" for those of any queue).

    One query a round tells a dialler with nothing to do so, instead of a claim per agent."""
    rows = await session.execute(
        select(CallbackRequest.queue, func.count())
        .where(_claimable(now, None))
        .group_by(CallbackRequest.queue)
    )
    return {queue: count for queue, count in rows.all()}


async def claim_callback(
    session: AsyncSession,
    *,
    agent_endpoint: str,
    queues: Collection[str],
    now: datetime,
    policy: CallbackPolicy = CallbackPolicy(),
) -> CallbackRequest | None:
    """Take the oldest due callback this agent (a member of ``queues``) may make, or None.

    Commit the session promptly: the row stays locked (PostgreSQL) or the database busy
    (SQLite) until then, and that is what keeps a second dialler off it.
    """
    query = (
        select(CallbackRequest)
        .where(_claimable(now, queues))
        .order_by(CallbackRequest.due_at, CallbackRequest.id)
        .limit(1)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    callback = await session.scalar(query)
    if callback is None:
        return None
    callback.status = CallbackStatus.ASSIGNED
    callback.agent_endpoint = agent_endpoint
    callback.last_attempt_at = now
    callback.lease_until = now + policy.lease
    await session.flush()
    return callback


@dataclass(frozen=True)
class PlacedCall:
    """The call an attempt on the customer's side made, stored as their outbound call.

    ``linkedid`` is unique per attempt: recording the same attempt twice stores it once."""

    linkedid: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime


async def _record_call(
    session: AsyncSession, callback: CallbackRequest, call: PlacedCall, outcome: DialOutcome
) -> CallRecorded | None:
    """Store the attempt's call: its CallRecorded, None when it was stored before."""
    _, recorded = await store_outbound_call(
        session,
        OutboundCall(
            linkedid=call.linkedid,
            customer_id=callback.customer_id,
            phone=callback.phone,
            agent_endpoint=callback.agent_endpoint,
            outcome=CALL_OUTCOMES[outcome],
            started_at=call.started_at,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            title=CALLBACK_TITLE,
            ticket_id=callback.ticket_id,
            queue=callback.queue or None,
        ),
    )
    return recorded


async def finish_attempt(
    session: AsyncSession,
    callback_id: int,
    outcome: DialOutcome,
    *,
    reason: str = "",
    now: datetime,
    policy: CallbackPolicy = CallbackPolicy(),
    call: PlacedCall | None = None,
) -> tuple[CallbackRequest, CallRecorded | None]:
    """Record how a dialling attempt ended: done, retried later, or failed for good.

    ``call``: for an attempt on the customer's side, the call to store in their history (with
    the outcome no answer, busy or failed when it did not connect); the CallRecorded returned
    with the row is for the caller to publish after the commit. An attempt whose call is
    already stored was recorded before (the handler ran again): the row is left as that
    recording left it, and nothing is to be published."""
    callback = await session.get(CallbackRequest, callback_id, with_for_update=True)
    if callback is None:
        raise LookupError(f"no callback {callback_id}")
    recorded = None
    if call is not None:
        recorded = await _record_call(session, callback, call, outcome)
        if recorded is None:
            return callback, None
    callback.lease_until = None
    callback.outcome = f"{outcome.value}: {reason}"[:200] if reason else outcome.value
    if outcome is DialOutcome.CONNECTED or outcome in CUSTOMER_SIDE:
        callback.attempts += 1
    if outcome is DialOutcome.CONNECTED:
        callback.status = CallbackStatus.DONE
    elif outcome is DialOutcome.REFUSED or callback.attempts >= policy.max_attempts:
        callback.status = CallbackStatus.FAILED
    else:
        callback.status = CallbackStatus.REQUESTED
        wait = policy.retry_after if outcome in CUSTOMER_SIDE else policy.agent_retry_after
        callback.due_at = now + wait
    await session.flush()
    return callback, recorded


async def recent_callbacks(session: AsyncSession, limit: int = 50) -> list[CallbackRequest]:
    """Open callbacks (soonest due first), then the most recently dialled finished ones."""
    open_ = await session.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.status.in_(OPEN_CALLBACK_STATUSES))
        .order_by(CallbackRequest.due_at, CallbackRequest.id)
        .limit(limit)
    )
    closed = await session.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.status.not_in(OPEN_CALLBACK_STATUSES))
        .order_by(CallbackRequest.last_attempt_at.desc(), CallbackRequest.id.desc())
        .limit(limit)
    )
    return [*open_, *closed]

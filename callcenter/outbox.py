"""The outbox: messages to customers are written in the same transaction as the change that
caused them, then sent by a worker with retries.

Delivery is at least once per row and, in practice, once: a row is leased before sending and
marked sent right after; only a crash between the send and that mark makes another worker send
it again after the lease lapses (email keeps the same Message-ID then, so mail clients show one).
Rows for one recipient go out in id order: a row waits while an earlier row of the same
recipient is still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from callcenter.models import Interaction, Outbox, OutboxStatus, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 12
MAX_BACKOFF = timedelta(minutes=10)


class RetryLater(Exception):
    """A temporary failure (network, 5xx, rate limit); ``retry_after`` seconds if the peer said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """The message can never be delivered (blocked bot, rejected address): stop retrying."""


class Sender(Protocol):
    channel: str

    async def send(self, item: Outbox) -> str | None:
        """Deliver one row; return the channel's id of what was sent."""
        ...


def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    recipient: str,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
    ticket_id: int | None = None,
    not_before: datetime | None = None,
) -> Outbox:
    """Add a message to send to the caller's transaction."""
    item = Outbox(
        channel=channel,
        recipient=recipient,
        payload=payload,
        dedupe_key=dedupe_key,
        ticket_id=ticket_id,
        next_attempt_at=not_before or utcnow(),
    )
    session.add(item)
    return item


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 ... seconds after the n-th failure, capped at ten minutes."""
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


class OutboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Sequence[Sender],
        *,
        now: Callable[[], datetime] = utcnow,
        batch: int = 50,
        idle_seconds: float = 1.0,
        lease: timedelta = LEASE,
    ) -> None:
        self.sessions = sessions
        self.lease = lease
        self.senders = {sender.channel: sender for sender in senders}
        self.now = now
        self.batch = batch
        self.idle_seconds = idle_seconds

    def _due(self, now: datetime):  # type: ignore[no-untyped-def]
        earlier = aliased(Outbox)
        blocked = exists().where(
            earlier.channel == Outbox.channel,
            earlier.recipient == Outbox.recipient,
            earlier.status == OutboxStatus.PENDING,
            earlier.id < Outbox.id,
        )
        return (
            select(Outbox)
            .where(
                Outbox.status == OutboxStatus.PENDING,
                Outbox.channel.in_(list(self.senders)),
                Outbox.next_attempt_at <= now,
                or_(Outbox.locked_until.is_(None), Outbox.locked_until < now),
                ~blocked,
            )
            .order_by(Outbox.id)
            .limit(self.batch)
        )

    async def _claim(self) -> list[Outbox]:
        now = self.now()
        async with self.sessions() as session, session.begin():
            query = self._due(now)
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=Outbox)
            items = list(await session.scalars(query))
            for item in items:
                item.locked_until = now + self.lease
        return items

    async def _finish(self, item: Outbox, **values: Any) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(Outbox).where(Outbox.id == item.id).values(**values))
            interaction_id = item.payload.get("interaction_id")
            if values.get("external_id") and interaction_id:
                await session.execute(
                    update(Interaction)
                    .where(
                        and_(Interaction.id == interaction_id, Interaction.external_id.is_(None))
                    )
                    .values(external_id=values["external_id"])
                )

    async def _renew(self, item: Outbox) -> bool:
        """Extend this worker's lease on ``item`` right before sending it; False when the lease
        lapsed and another worker has taken the row over (or it is no longer pending). A batch
        is sent one row after another, so its last rows may wait longer than the lease."""
        lease = self.now() + self.lease
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Outbox)
                .where(
                    Outbox.id == item.id,
                    Outbox.status == OutboxStatus.PENDING,
                    Outbox.locked_until == item.locked_until,
                )
                .values(locked_until=lease)
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        item.locked_until = lease
        return True

    async def _deliver(self, item: Outbox) -> None:
        if not await self._renew(item):
            log.info("outbox %s: lease taken over by another worker; not sending", item.id)
            return
        sender = self.senders[item.channel]
        attempts = item.attempts + 1
        try:
            external_id = await sender.send(item)
        except PermanentFailure as exc:
            log.warning("outbox %s to %s given up: %s", item.id, item.channel, exc)
            await self._finish(
                item,
                status=OutboxStatus.FAILED,
                attempts=attempts,
                last_error=str(exc),
                locked_until=None,
            )
            return
        except Exception as exc:
            retry_after = exc.retry_after if isinstance(exc, RetryLater) else None
            if not isinstance(exc, RetryLater):
                log.exception(
                    "outbox %s: unexpected error from the %s sender", item.id, item.channel
                )
            delay = max(backoff(attempts), timedelta(seconds=retry_after or 0))
            give_up = attempts >= MAX_ATTEMPTS
            await self._finish(
                item,
                status=OutboxStatus.FAILED if give_up else OutboxStatus.PENDING,
                attempts=attempts,
                last_error=str(exc) or type(exc).__name__,
                next_attempt_at=self.now() + delay,
                locked_until=None,
            )
            return
        await self._finish(
            item,
            status=OutboxStatus.SENT,
            attempts=attempts,
            sent_at=self.now(),
            external_id=external_id,
            last_error="",
            locked_until=None,
        )

    async def run_once(self) -> int:
        """Send what is due now; returns how many rows were tried."""
        items = await self._claim()
        for item in items:
            await self._deliver(item)
        return len(items)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set, sleeping briefly when nothing is due."""
        while not stop.is_set():
            try:
                tried = await self.run_once()
            except Exception:
                log.exception("outbox pass failed; retrying")
                tried = 0
            if not tried:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_seconds)

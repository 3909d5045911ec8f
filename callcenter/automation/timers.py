"""Durable timers: armed in the caller's transaction, fired once by any number of workers.

A worker claims one due timer in a transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on
SQLite every transaction begins IMMEDIATE, so claims are serialised), runs its handler in a
savepoint of that same transaction and marks it fired before committing. The handler's writes
and the ``fired`` mark commit together: a crash before the commit leaves the timer pending for
the next worker or the next start, and a committed timer is never fired again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import Timer, TimerStatus, utcnow
from callcenter.outbox import backoff

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10

TimerHandler = Callable[[AsyncSession, Timer, datetime], Awaitable[None]]
"""Runs a due timer inside the claiming transaction; raising retries it later."""


async def arm(
    session: AsyncSession, kind: str, key: str, due_at: datetime, payload: dict[str, Any]
) -> Timer:
    """Schedule ``kind`` at ``due_at``; a pending or fired timer with this key is kept as it is.

    A cancelled timer with the same key is armed again with the new time and payload.
    """
    existing = await session.scalar(select(Timer).where(Timer.key == key))
    if existing is None:
        try:
            async with session.begin_nested():
                timer = Timer(kind=kind, key=key, due_at=due_at, payload=payload)
                session.add(timer)
            return timer
        except IntegrityError:  # armed concurrently by another transaction
            existing = await session.scalar(select(Timer).where(Timer.key == key))
            if existing is None:
                raise
    if existing.status is TimerStatus.CANCELLED:
        existing.status = TimerStatus.PENDING
        existing.due_at = due_at
        existing.payload = payload
        existing.attempts = 0
        existing.locked_until = None
        await session.flush()
    return existing


async def cancel(session: AsyncSession, key: str) -> bool:
    """Cancel the pending timer with this key; False if there was none."""
    result = await session.execute(
        update(Timer)
        .where(Timer.key == key, Timer.status == TimerStatus.PENDING)
        .values(status=TimerStatus.CANCELLED)
    )
    return bool(result.rowcount)


async def cancel_prefix(session: AsyncSession, prefix: str) -> int:
    """Cancel every pending timer whose key starts with ``prefix``; returns how many."""
    result = await session.execute(
        update(Timer)
        .where(Timer.key.startswith(prefix, autoescape=True), Timer.status == TimerStatus.PENDING)
        .values(status=TimerStatus.CANCELLED)
    )
    return int(result.rowcount or 0)


class TimerWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Mapping[str, TimerHandler],
        *,
        now: Callable[[], datetime] = utcnow,
        batch: int = 100,
        idle_seconds: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.handlers = dict(handlers)
        self.now = now
        self.batch = batch
        self.idle_seconds = idle_seconds

    async def fire_next(self) -> bool:
        """Fire one due timer; False when none is due."""
        now = self.now()
        async with self.sessions() as session, session.begin():
            query = (
                select(Timer)
                .where(
                    Timer.status == TimerStatus.PENDING,
                    Timer.kind.in_(list(self.handlers)),
                    Timer.due_at <= now,
                    or_(Timer.locked_until.is_(None), Timer.locked_until <= now),
                )
                .order_by(Timer.due_at, Timer.id)
                .limit(1)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            timer = await session.scalar(query)
            if timer is None:
                return False
            timer_id, kind, attempts = timer.id, timer.kind, timer.attempts
            try:
                async with session.begin_nested():
                    await self.handlers[kind](session, timer, now)
            except Exception as exc:
                attempts += 1
                give_up = attempts >= MAX_ATTEMPTS
                log.exception("timer %s (%s) failed, attempt %s", timer_id, kind, attempts)
                values: dict[str, Any] = {
                    "attempts": attempts,
                    "locked_until": now + backoff(attempts),
                }
                if give_up:
                    log.error("timer %s (%s) given up: %s", timer_id, kind, exc)
                    values["status"] = TimerStatus.CANCELLED
                await session.execute(update(Timer).where(Timer.id == timer_id).values(**values))
                return True
            await session.execute(
                update(Timer)
                .where(Timer.id == timer_id)
                .values(status=TimerStatus.FIRED, fired_at=now, attempts=attempts + 1)
            )
        return True

    async def run_once(self) -> int:
        """Fire what is due now (up to ``batch``); returns how many timers were tried."""
        fired = 0
        while fired < self.batch and await self.fire_next():
            fired += 1
        return fired

    async def run(self, stop: asyncio.Event) -> None:
        """Fire timers until ``stop`` is set, sleeping briefly when nothing is due."""
        while not stop.is_set():
            try:
                tried = await self.run_once()
            except Exception:
                log.exception("timer pass failed; retrying")
                tried = 0
            if not tried:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_seconds)

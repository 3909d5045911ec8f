"""Nothing lost between a commit and its bus handler: a supervised scan reads new tickets,
messages, agents' replies, calls and solves past a stored checkpoint and queues what the feed
would have queued; the feed's keys (``once``) make a repeat a no-op.

A transaction that took a lower id (or an earlier ``solved_at``) may commit after a higher one,
so the checkpoint only passes what a pass read ``GRACE`` ago (by the scan's own clock: a ticket's
``created_at`` is its first message's date); meanwhile rows are read again, but what this
process handled already (by the bus or an earlier pass, ``Feed.handled``) is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.crm.feed import Feed
from callcenter.crm.models import FeedCheckpoint
from callcenter.models import Call, Channel, Direction, Interaction, Ticket, utcnow

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=2)
SOURCES = ("tickets", "messages", "calls", "solved")


def _query(source: str, checkpoint: FeedCheckpoint) -> Any:
    """(id, at, handler name) rows past the checkpoint, in checkpoint order."""
    if source == "tickets":
        return select(Ticket.id, Ticket.created_at, false()).where(Ticket.id > checkpoint.last_id)
    if source == "messages":
        kind = and_(Interaction.direction == Direction.OUTBOUND, Interaction.agent_id.isnot(None))
        return select(Interaction.id, Interaction.created_at, kind).where(
            Interaction.id > checkpoint.last_id,
            Interaction.channel.notin_([Channel.CALL, Channel.NOTE]),
            or_(Interaction.direction == Direction.INBOUND, kind),
        )
    if source == "calls":
        return (
            select(Call.interaction_id, Interaction.created_at, false())
            .join(Interaction, Interaction.id == Call.interaction_id)
            .where(Call.interaction_id > checkpoint.last_id)
        )
    after = or_(
        Ticket.solved_at > checkpoint.last_at,
        and_(Ticket.solved_at == checkpoint.last_at, Ticket.id > checkpoint.last_id),
    )
    return (
        select(Ticket.id, Ticket.solved_at, false())
        .where(Ticket.solved_at.isnot(None), after)
        .order_by(Ticket.solved_at, Ticket.id)
    )


Key = tuple[Any, ...]
"""A row's place in its source's order: (id,), or (solved_at, id) for solves."""


def _key(source: str, row: Any) -> Key:
    return (row[1], row[0]) if source == "solved" else (row[0],)


def _position(source: str, checkpoint: FeedCheckpoint) -> Key:
    return (checkpoint.last_at, checkpoint.last_id) if source == "solved" else (checkpoint.last_id,)


async def _start(session: AsyncSession, source: str, now: datetime) -> FeedCheckpoint:
    """A new checkpoint: history before the deployment is not replayed."""
    if source == "solved":
        return FeedCheckpoint(source=source, last_id=0, last_at=now)
    table = {"tickets": Ticket, "messages": Interaction, "calls": Interaction}[source]
    return FeedCheckpoint(
        source=source, last_id=await session.scalar(select(func.max(table.id))) or 0
    )


class CatchUp:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        feed: Feed,
        *,
        now: Callable[[], datetime] = utcnow,
        grace: timedelta = GRACE,
        batch: int = 500,
        idle_seconds: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.feed = feed
        self.now = now
        self.grace = grace
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._passes: dict[str, deque[tuple[datetime, Key]]] = {s: deque() for s in SOURCES}
        """When each recent pass ran and the last row it read."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.idle_seconds)

    async def run_once(self) -> int:
        """One pass over every source; how many rows it handled."""
        handled = 0
        for source in SOURCES:
            try:
                handled += await self._scan(source)
            except IntegrityError:  # a bus handler queued the same change meanwhile
                log.info("catch-up of %s raced a bus handler; read again next pass", source)
        return handled

    async def _handle(self, source: str, session: AsyncSession, row_id: int, reply: bool) -> None:
        if source == "tickets":
            await self.feed.ticket_created(session, row_id)
        elif source == "messages":
            await (self.feed.reply if reply else self.feed.message)(session, row_id)
        elif source == "calls":
            await self.feed.call(session, row_id)
        else:
            await self.feed.ticket_solved(session, row_id)

    async def _scan(self, source: str) -> int:
        now = self.now()
        handled, passes = self.feed.handled, self._passes[source]
        async with self.sessions() as session, session.begin():
            checkpoint = await session.get(FeedCheckpoint, source)
            if checkpoint is None:
                session.add(await _start(session, source, now))
                return 0
            query = _query(source, checkpoint)
            if source != "solved":
                query = query.order_by(query.selected_columns[0])
            rows = list(await session.execute(query.limit(self.batch)))
            new = [row for row in rows if (source, _key(source, row)) not in handled]
            for row in new:
                await self._handle(source, session, row[0], bool(row[2]))
            if rows:
                passes.append((now, _key(source, rows[-1])))
            while passes and passes[0][0] <= now - self.grace:
                _, last = passes.popleft()
                if last > _position(source, checkpoint):
                    checkpoint.last_id = last[-1]
                    checkpoint.last_at = last[0] if source == "solved" else None
        for row in new:
            handled.add(source, _key(source, row))
        return len(new)

"""Keeps the wallboard's omnichannel tiles fresh: reads the backlog every `interval` seconds,
and sooner after a message, a reply, a solved ticket or a callback request, but no more often
than every `min_gap` seconds: a reading scans the tickets (0.5 s over 2.8 million of them in
PostgreSQL), and the tiles are about waits of minutes and hours."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.events import TicketSolved
from callcenter.bus import Bus
from callcenter.channels.telegram.callbacks import CallbackRequested
from callcenter.dashboard.backlog import Backlog, read_backlog
from callcenter.dashboard.wallboard import wait_either
from callcenter.domain.events import AgentReplied, MessageReceived, TicketCreated
from callcenter.models import utcnow

log = logging.getLogger(__name__)

CHANGES = (MessageReceived, TicketCreated, AgentReplied, TicketSolved, CallbackRequested)


class BacklogWatch:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        promise: timedelta,
        update: Callable[[Backlog], None],
        *,
        zone: tzinfo = UTC,
        interval: float = 15.0,
        min_gap: float = 5.0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """`update` gets every reading (Wallboard.set_backlog); `zone`: the contact centre's
        time zone (settings.timezone), whose local days the repeat-contact rollup counts."""
        self._sessions = sessions
        self._promise = promise
        self._update = update
        self._zone = zone
        self._interval = interval
        self._min_gap = min_gap
        self._now = now
        self._wake = asyncio.Event()

    def subscribe(self, bus: Bus) -> None:
        for event_type in CHANGES:
            bus.subscribe(event_type, self._on_event)

    async def _on_event(self, event: object) -> None:
        self._wake.set()

    async def read(self) -> Backlog:
        async with self._sessions() as session:
            return await read_backlog(session, self._now(), self._promise, self._zone)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()
            started = loop.time()
            try:
                self._update(await self.read())
            except (SQLAlchemyError, OSError) as exc:
                log.warning("wallboard tiles not read: %s", exc)
            rest = started + self._min_gap - loop.time()
            if rest > 0:  # changes meanwhile wait for the next reading
                await wait_either(stop, asyncio.Event(), rest)
            await wait_either(stop, self._wake, max(0.0, self._interval - self._min_gap))

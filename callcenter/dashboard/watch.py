"""Keeps the wallboard's omnichannel tiles fresh: reads the backlog every `interval` seconds,
and again soon after a message, a reply, a solved ticket or a callback request. The 7-day
repeat-contact rate, the costly part, is read again only every `repeat_every`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.events import TicketSolved
from callcenter.bus import Bus
from callcenter.channels.telegram.callbacks import CallbackRequested
from callcenter.dashboard.backlog import Backlog, RepeatRate, read_backlog, repeat_rate
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
        interval: float = 15.0,
        settle: float = 0.5,
        repeat_every: timedelta = timedelta(minutes=5),
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """`update` gets every reading (Wallboard.set_backlog); `settle` seconds after a
        change event gather a burst of them into one reading."""
        self._sessions = sessions
        self._promise = promise
        self._update = update
        self._interval = interval
        self._settle = settle
        self._now = now
        self._wake = asyncio.Event()
        self._repeat_every = repeat_every
        self._repeat: tuple[datetime, RepeatRate] | None = None

    def subscribe(self, bus: Bus) -> None:
        for event_type in CHANGES:
            bus.subscribe(event_type, self._on_event)

    async def _on_event(self, event: object) -> None:
        self._wake.set()

    async def read(self) -> Backlog:
        now = self._now()
        async with self._sessions() as session:
            if self._repeat is None or now - self._repeat[0] >= self._repeat_every:
                self._repeat = (now, await repeat_rate(session, now))
            return await read_backlog(session, now, self._promise, self._repeat[1])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                self._update(await self.read())
            except (SQLAlchemyError, OSError) as exc:
                log.warning("wallboard tiles not read: %s", exc)
            await wait_either(stop, self._wake, self._interval)
            if self._wake.is_set() and not stop.is_set():
                await wait_either(stop, asyncio.Event(), self._settle)

"""New callbacks, wherever they were created (the rules engine, the Telegram bot, another
process), announced on the bus as ``CallbackChanged`` for the live callback list.

One indexed read of the newest id a round; the dialler announces its own claims and outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import CallbackChanged
from callcenter.bus import Bus
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus

log = logging.getLogger(__name__)


class NewCallbacks:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], bus: Bus, *, poll_seconds: float = 2.0
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.poll_seconds = poll_seconds
        self._newest: int | None = None

    async def check(self) -> bool:
        """Announce the newest callback if one was created since the last check."""
        async with self.sessions() as session:
            newest = await session.scalar(select(func.max(CallbackRequest.id))) or 0
        seen, self._newest = self._newest, newest
        if seen is None or newest <= seen:
            return False
        self.bus.publish(CallbackChanged(newest, CallbackStatus.REQUESTED))
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check()
            except Exception:  # the database may be away; try again next round
                log.exception("checking for new callbacks failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)

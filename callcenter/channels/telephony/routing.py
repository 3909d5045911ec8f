"""Which queue takes a trunk call: the dialled number (DID) set on /admin/queues.

The FastAGI lookup must stay one database round trip per call (bench/fastagi_lookup.py), so
the numbers are not queried per call: `QueueNumbers` keeps them in memory, reloads them after
an admin saves a queue in this process, and every few seconds for a FastAGI server running
apart from the web (``callcenter agi``). Only names of the closed queue-name form leave here,
and the dialplan checks them again before Queue() (dialplan/extensions.conf).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import Queue

log = logging.getLogger(__name__)

QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_DIALLED = re.compile(r"\+?([0-9]{3,15})")


class QueueNumbers:
    """Dialled number -> queue name, from the queues table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval: float = 5.0) -> None:
        self._sessions = sessions
        self.interval = interval
        self._queues: dict[str, str] = {}

    def queue_for(self, dialled: str) -> str:
        """The queue of a dialled number (a leading ``+`` ignored), or "" when none has it."""
        match = _DIALLED.fullmatch(dialled.strip())
        return self._queues.get(match.group(1), "") if match else ""

    async def refresh(self) -> None:
        """Reload the numbers; on a database error the previous ones stay in use."""
        try:
            async with self._sessions() as db:
                rows = (
                    await db.execute(
                        select(Queue.inbound_number, Queue.name).where(
                            Queue.inbound_number.is_not(None)
                        )
                    )
                ).all()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("queue numbers not reloaded: %r", exc)
            return
        self._queues = {
            number: name for number, name in rows if number and QUEUE_NAME.fullmatch(name)
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Reload now and every ``interval`` seconds until ``stop``."""
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

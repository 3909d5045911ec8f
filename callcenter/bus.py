"""In-process publish/subscribe of domain events.

Publishers (channel adapters, domain services) never wait on subscribers: each subscriber's
handler runs in its own task, and a failing handler is logged, not propagated.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None]]


class Bus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, event_type: type, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for every event of ``event_type``; returns the unsubscribe call."""
        self._handlers[event_type].append(handler)
        return lambda: self._handlers[event_type].remove(handler)

    def publish(self, event: object) -> None:
        """Schedule every handler subscribed to the event's type (or a base of it)."""
        for event_type in type(event).__mro__:
            for handler in self._handlers.get(event_type, ()):
                task = asyncio.get_running_loop().create_task(self._run(handler, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run(self, handler: Handler, event: object) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("handler %r failed on %r", handler, event)

    async def drain(self) -> None:
        """Wait until every scheduled handler has finished (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

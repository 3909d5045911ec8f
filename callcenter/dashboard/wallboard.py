"""The wallboard publisher: telephony events mark the figures changed, and a loop pushes
snapshots to every supervisor's and admin's browser, throttled (see throttle.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from callcenter.bus import Bus
from callcenter.channels.telephony.events import (
    AgentRinging,
    AgentState,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallerAbandoned,
    CallerJoined,
    QueueChanged,
)
from callcenter.channels.telephony.state import AgentSnapshot, QueueSnapshot
from callcenter.dashboard.backlog import Backlog
from callcenter.dashboard.board import Policy, board_json
from callcenter.dashboard.throttle import Throttle
from callcenter.models import Role, utcnow

log = logging.getLogger(__name__)

EVENT = "wallboard"
WATCHERS = (Role.SUPERVISOR, Role.ADMIN)
CHANGES = (
    QueueChanged,
    AgentStateChanged,
    CallerJoined,
    CallerAbandoned,
    AgentRinging,
    CallAnswered,
    CallEnded,
)

Publish = Callable[[Role, str, Any], int]


class LiveFigures(Protocol):
    """What the wallboard reads: the telephony live state (state.LiveState)."""

    def queue_snapshots(self, now: datetime) -> list[QueueSnapshot]: ...

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]: ...


class Wallboard:
    def __init__(
        self,
        state: LiveFigures,
        publish: Publish,
        *,
        policy: Policy | None = None,
        throttle: Throttle | None = None,
        now: Callable[[], datetime] = utcnow,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`publish(role, event, data)` is the web hub's publish_to_role."""
        self.policy = policy or Policy()
        self._state = state
        self._publish = publish
        self._throttle = throttle or Throttle()
        self._now = now
        self._clock = clock
        self._wake = asyncio.Event()
        self._backlog: Backlog | None = None

    def subscribe(self, bus: Bus) -> None:
        for event_type in CHANGES:
            bus.subscribe(event_type, self._on_event)

    async def _on_event(self, event: object) -> None:
        self.changed()

    def changed(self) -> None:
        """The figures changed: publish soon (within the throttle's minimum interval)."""
        self._throttle.changed()
        self._wake.set()

    def set_backlog(self, backlog: Backlog) -> None:
        """The omnichannel tiles' latest reading (watch.BacklogWatch); pushed if it changed."""
        if backlog != self._backlog:
            self._backlog = backlog
            self.changed()

    def snapshot(self) -> dict[str, Any]:
        """The wallboard as JSON, as of now (also what a freshly loaded page shows)."""
        now = self._now()
        queues, agents = self._state.queue_snapshots(now), self._state.agent_snapshots(now)
        return board_json(queues, agents, self.policy, now, self._backlog)

    def on_call(self, interface: str) -> bool:
        """Whether the agent is on a call now (on any server, when several are side by side)."""
        return any(
            a.interface == interface and a.state is AgentState.ON_CALL
            for a in self._state.agent_snapshots(self._now())
        )

    def publish(self) -> int:
        """Push the snapshot to every watching browser tab; returns how many got it."""
        data = self.snapshot()
        return sum(self._publish(role, EVENT, data) for role in WATCHERS)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop`: after changes (throttled) and at every tick."""
        while not stop.is_set():
            self._wake.clear()
            delay = self._throttle.delay(self._clock())
            if delay > 0:
                await wait_either(stop, self._wake, delay)
                continue
            self.publish()
            self._throttle.published(self._clock())


async def wait_either(first: asyncio.Event, second: asyncio.Event, timeout: float) -> None:
    """Wait until either event is set or `timeout` seconds pass."""
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()

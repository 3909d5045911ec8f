"""Who has event streams open in the other web processes, and whether one of them runs
telephony.

Each process announces over the fan-out (web/fanout.py) how many streams each user has open
here, at once when that changes and every ``interval`` seconds anyway; an announcement not
renewed within ``ttl`` is forgotten (its process died or lost the database). The supervisor
page's "online" list and a screen-pop's delivered count add the other processes' streams to
this one's; a process without telephony leaves the wallboard to one that has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callcenter.models import Role
from callcenter.web.streams import Hub

KIND = "presence"
Send = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class _Peer:
    seen_at: float
    streams: dict[int, int]
    telephony: bool


class Presence:
    def __init__(
        self,
        hub: Hub,
        *,
        telephony: bool,
        interval: float = 10.0,
        ttl: float = 35.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = uuid.uuid4().hex
        self._hub = hub
        self._telephony = telephony
        self._interval = interval
        self._ttl = ttl
        self._clock = clock
        self._peers: dict[str, _Peer] = {}
        self._send: Send | None = None
        self._announced: dict[int, int] | None = None
        self._announced_at = 0.0

    def attach(self, send: Send) -> None:
        """Announce through ``send`` (Fanout.outgoing)."""
        self._send = send

    def local(self) -> dict[int, int]:
        return dict(Counter(c.user_id for c in self._hub.connections()))

    def _alive(self) -> list[_Peer]:
        now = self._clock()
        for peer_id in [p for p, peer in self._peers.items() if now - peer.seen_at > self._ttl]:
            del self._peers[peer_id]
        return list(self._peers.values())

    def online(self) -> set[int]:
        """Users with a stream open in any process."""
        return set(self.local()).union(*(peer.streams for peer in self._alive()))

    def elsewhere(self, user_id: int) -> int:
        """The user's streams open in the other processes."""
        return sum(peer.streams.get(user_id, 0) for peer in self._alive())

    def telephony_elsewhere(self) -> bool:
        return any(peer.telephony for peer in self._alive())

    def publish_to_user(self, user_id: int, event: str, data: Any) -> int:
        """Hub.publish_to_user, counting the streams it reaches in every process."""
        return self._hub.publish_to_user(user_id, event, data) + self.elsewhere(user_id)

    def publish_board(self, role: Role, event: str, data: Any) -> int:
        """A wallboard of tiles alone (no telephony here): to this process's streams only, and
        none while a process with telephony publishes the whole board."""
        if self.telephony_elsewhere():
            return 0
        return self._hub.publish_to_role(role, event, data, relay=False)

    def receive(self, message: dict[str, Any]) -> None:
        """A relayed announcement (Fanout.on)."""
        peer_id = str(message["process"])
        if peer_id == self.id:
            return
        if message.get("gone"):
            self._peers.pop(peer_id, None)
            return
        streams = {int(user): int(n) for user, n in dict(message["streams"]).items()}
        known = peer_id in self._peers
        self._peers[peer_id] = _Peer(self._clock(), streams, bool(message.get("telephony")))
        if not known:  # a process (re)joined: let it know about us at once
            self.announce()

    def announce(self, *, gone: bool = False) -> None:
        if self._send is None:
            return
        streams = self.local()
        self._announced, self._announced_at = streams, self._clock()
        message: dict[str, Any] = {"kind": KIND, "process": self.id, "telephony": self._telephony}
        message |= {"gone": True} if gone else {"streams": {str(u): n for u, n in streams.items()}}
        self._send(message)

    async def run(self, stop: asyncio.Event) -> None:
        """Announce changes within a second, and every ``interval`` seconds regardless."""
        try:
            while not stop.is_set():
                due = self._clock() - self._announced_at >= self._interval
                if due or self.local() != self._announced:
                    self.announce()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            self.announce(gone=True)

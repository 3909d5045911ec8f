"""Server-sent events: one bounded queue per browser connection, addressed by user or role.

``publish_to_user`` reaches only the connections of that user (an agent's screen-pops);
``publish_to_role`` reaches every connection whose user has that role. A connection whose
queue is full belongs to a browser that stopped reading: it is dropped at once, so a stuck
browser never holds more than ``QUEUE_SIZE`` events.

With several web processes, ``relay_to`` hands every publication and ``close_user`` to a
fan-out (web/fanout.py) that repeats it in the other processes through ``receive``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callcenter.models import Role

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_CLOSE = b""


def encode_event(event: str, data: Any) -> bytes:
    """One SSE frame; JSON never contains a raw newline, so the frame cannot be split."""
    if not _EVENT_NAME.fullmatch(event):
        raise ValueError(f"invalid event name {event!r}")
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"event: {event}\ndata: {payload}\n\n".encode()


@dataclass(eq=False)
class Connection:
    """One open stream carrying ``user_id``'s events, watched by ``viewer_id``."""

    user_id: int
    role: Role
    abort: Callable[[], None]
    viewer_id: int
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    closed: bool = False


Relay = Callable[[dict[str, Any]], None]


class Hub:
    def __init__(self) -> None:
        self._connections: set[Connection] = set()
        self._relay: Relay | None = None

    def relay_to(self, relay: Relay) -> None:
        """Also send every publication and ``close_user`` to the other web processes."""
        self._relay = relay

    def _forward(self, message: dict[str, Any]) -> None:
        if self._relay is not None:
            self._relay(message)

    def receive(self, message: dict[str, Any]) -> None:
        """Act on a message relayed from another process, for this process's streams only."""
        kind = message.get("kind")
        if kind == "close":
            self._close_local(int(message["user"]))
            return
        frame = str(message["frame"]).encode()
        if kind == "user":
            self._to_user(int(message["user"]), frame)
        elif kind == "role":
            self._to_role(Role(message["role"]), frame)
        else:
            log.warning("unknown relayed message kind %r", kind)

    def connect(
        self, user_id: int, role: Role, abort: Callable[[], None], viewer_id: int | None = None
    ) -> Connection:
        conn = Connection(user_id, role, abort, user_id if viewer_id is None else viewer_id)
        self._connections.add(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        self._connections.discard(conn)
        conn.closed = True

    def connections(self, user_id: int | None = None) -> list[Connection]:
        return [c for c in self._connections if user_id is None or c.user_id == user_id]

    def _deliver(self, conn: Connection, frame: bytes) -> None:
        try:
            conn.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("event stream of user %s is not reading; disconnecting", conn.user_id)
            self._drop(conn)

    def _drop(self, conn: Connection) -> None:
        self.disconnect(conn)
        while not conn.queue.empty():
            conn.queue.get_nowait()
        conn.queue.put_nowait(_CLOSE)
        conn.abort()

    def publish_to_user(self, user_id: int, event: str, data: Any) -> int:
        """Queue an event for every connection of one user; returns how many in this process
        got it (the other processes' streams are reached through the relay)."""
        frame = encode_event(event, data)
        self._forward({"kind": "user", "user": user_id, "frame": frame.decode()})
        return self._to_user(user_id, frame)

    def publish_to_role(self, role: Role, event: str, data: Any, *, relay: bool = True) -> int:
        """Queue an event for every connection of users with ``role`` (count as above); with
        ``relay`` False, for this process's connections only."""
        frame = encode_event(event, data)
        if relay:
            self._forward({"kind": "role", "role": role.value, "frame": frame.decode()})
        return self._to_role(role, frame)

    def _to_user(self, user_id: int, frame: bytes) -> int:
        targets = [c for c in self._connections if c.user_id == user_id]
        for conn in targets:
            self._deliver(conn, frame)
        return len(targets)

    def _to_role(self, role: Role, frame: bytes) -> int:
        targets = [c for c in self._connections if c.role is role]
        for conn in targets:
            self._deliver(conn, frame)
        return len(targets)

    def _end(self, conn: Connection) -> None:
        """Let the stream finish cleanly after what is already queued."""
        self.disconnect(conn)
        try:
            conn.queue.put_nowait(_CLOSE)
        except asyncio.QueueFull:
            self._drop(conn)

    def close_user(self, user_id: int) -> None:
        """End the streams a user watches (logout everywhere, deactivation), in every process."""
        self._forward({"kind": "close", "user": user_id})
        self._close_local(user_id)

    def _close_local(self, user_id: int) -> None:
        for conn in [c for c in self._connections if user_id in (c.user_id, c.viewer_id)]:
            self._end(conn)

    def close_all(self) -> None:
        for conn in list(self._connections):
            self._end(conn)


async def pump(conn: Connection, write: Callable[[bytes], Any], heartbeat: float = 15.0) -> None:
    """Write queued frames until the connection is closed; a comment line keeps proxies open."""
    while not conn.closed or not conn.queue.empty():
        try:
            frame = await asyncio.wait_for(conn.queue.get(), heartbeat)
        except TimeoutError:
            frame = b": keep-alive\n\n"
        if frame == _CLOSE:
            return
        await write(frame)

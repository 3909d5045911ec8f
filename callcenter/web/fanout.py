"""Fan-out of event-stream messages between web processes, over a notification channel.

What crosses: everything the hub sends to browsers (a screen-pop goes to the ringing agent on
whichever process their browser is connected to; wallboard snapshots come from the process
holding the AMI connection) and ``close_user`` (a logout everywhere or a deactivation must end
streams on every process). What does not: the domain bus. Its events are handled once, by the
process where they happen (the telephony process records calls and builds pops; work for later
goes through the database's outbox and timers), so repeating them elsewhere would do it twice.

The hub relays each publication as a JSON message. A notification payload is limited (8000
bytes in PostgreSQL), so a larger message is cut into numbered parts that the transport sends
in one transaction: PostgreSQL delivers one transaction's notifications together and in order,
so the receiver puts them back together without storing anything in a table. A receiver keys
the parts by the sender's connection id and the message number.

The transport (pgnotify.py for PostgreSQL) is given ``incoming`` and ``resynced``; it never
hands a process its own notifications back.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from itertools import count
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import User
from callcenter.web.streams import Hub

log = logging.getLogger(__name__)

PAYLOAD_LIMIT = 7900
"""Bytes per notification, below PostgreSQL's 8000 with room for the part header."""
MAX_PARTIAL = 64
"""Messages whose parts are still arriving; older ones are dropped (their sender vanished)."""

Send = Callable[[list[str]], None]
Resync = Callable[[], Awaitable[None]]


def split(number: int, body: str, limit: int = PAYLOAD_LIMIT) -> list[str]:
    """``body`` as notification payloads ``"<number> <index> <total> <part>"``, each under
    ``limit`` bytes; parts are cut on UTF-8 character boundaries."""
    raw = body.encode()
    room = limit - 40
    parts: list[bytes] = []
    while raw:
        cut = min(room, len(raw))
        while cut < len(raw) and (raw[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(raw[:cut])
        raw = raw[cut:]
    parts = parts or [b""]
    return [f"{number} {i} {len(parts)} {part.decode()}" for i, part in enumerate(parts)]


class Reassembler:
    """Puts the parts of each sender's messages back together."""

    def __init__(self) -> None:
        self._partial: OrderedDict[tuple[int, int], list[str]] = OrderedDict()

    def add(self, sender: int, payload: str) -> str | None:
        """The whole message once its last part is in, else None."""
        number, index, total, part = payload.split(" ", 3)
        if total == "1":
            return part
        key = (sender, int(number))
        parts = self._partial.setdefault(key, [])
        if len(parts) != int(index):  # a part went missing (connection lost mid-message)
            del self._partial[key]
            return None
        parts.append(part)
        if len(parts) < int(total):
            while len(self._partial) > MAX_PARTIAL:
                self._partial.popitem(last=False)
            return None
        del self._partial[key]
        return "".join(parts)

    def clear(self) -> None:
        self._partial.clear()


class Fanout:
    """Connects a hub to a transport: outgoing messages are split, incoming ones rebuilt and
    delivered to this process's streams. After the transport reconnects, ``resync`` runs
    (what was relayed while it was away is lost; resync repairs what must not be)."""

    def __init__(self, hub: Hub, resync: Resync | None = None) -> None:
        self._hub = hub
        self._resync = resync
        self._numbers = count()
        self._parts = Reassembler()
        self._send: Send | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {}

    def on(self, kind: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Relayed messages of ``kind`` go to ``handler`` instead of the hub (presence.py)."""
        self._handlers[kind] = handler

    def attach(self, send: Send) -> None:
        self._send = send
        self._hub.relay_to(self.outgoing)

    def outgoing(self, message: dict[str, Any]) -> None:
        if self._send is not None:
            body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
            self._send(split(next(self._numbers), body))

    def incoming(self, sender: int, payload: str) -> None:
        try:
            whole = self._parts.add(sender, payload)
            if whole is not None:
                message = json.loads(whole)
                self._handlers.get(message.get("kind"), self._hub.receive)(message)
        except (ValueError, KeyError, TypeError):
            log.warning("dropping a malformed relayed message from connection %s", sender)

    async def resynced(self) -> None:
        self._parts.clear()
        if self._resync is not None:
            await self._resync()


async def close_inactive(hub: Hub, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Resync after a gap: a deactivation relayed while we were away must still end streams."""
    watching = {c.user_id for c in hub.connections()} | {c.viewer_id for c in hub.connections()}
    if not watching:
        return
    async with sessions() as session:
        inactive = await session.scalars(
            select(User.id).where(User.id.in_(watching), User.active.is_(False))
        )
        for user_id in inactive:
            hub.close_user(user_id)

"""PostgreSQL LISTEN/NOTIFY transport for the web processes' event fan-out (web/fanout.py).

One asyncpg connection per process both listens and notifies, so a notification whose sender
is this connection's backend is our own and is skipped. Outgoing payloads wait in a bounded
buffer and a batch is kept until its transaction commits, so messages published while the
connection is down are sent after it is back. The connection is pinged every ``keepalive``
seconds: a killed backend or a silent network is noticed within that time, then the
transport reconnects (pausing 1 s, doubling to 10 s) and calls ``resynced``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy.engine import make_url

from callcenter import health

log = logging.getLogger(__name__)

CHANNEL = "callcenter_events"
APPLICATION_NAME = f"callcenter-fanout:{os.getpid()}"
"""How the connection shows in pg_stat_activity: the process is findable by its pid."""
HEALTH_NAME = "fanout"
BUFFER = 1000
BATCH = 100
MAX_PAUSE = 10.0


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL (``postgresql+asyncpg://…``) as a plain libpq DSN for asyncpg."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgNotify:
    def __init__(
        self,
        dsn: str,
        incoming: Callable[[int, str], None],
        resynced: Callable[[], Awaitable[None]],
        *,
        channel: str = CHANNEL,
        keepalive: float = 5.0,
        application_name: str = APPLICATION_NAME,
    ) -> None:
        self._dsn = dsn
        self._incoming = incoming
        self._resynced = resynced
        self._channel = channel
        self._keepalive = keepalive
        self._application_name = application_name
        self._outgoing: asyncio.Queue[list[str]] = asyncio.Queue(BUFFER)
        self._batch: list[list[str]] = []
        self._connected_before = False
        self._dropped = 0
        self._pause = 1.0

    def send(self, payloads: list[str]) -> None:
        """Queue one message's payloads (sent together, in one transaction)."""
        try:
            self._outgoing.put_nowait(payloads)
        except asyncio.QueueFull:
            if not self._dropped:
                log.warning("event fan-out buffer full (PostgreSQL slow or away); dropping")
            self._dropped += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Listen and send until ``stop``, reconnecting whenever the connection is lost."""
        while not stop.is_set():
            try:
                await self._session(stop)
            except Exception as exc:  # asyncpg also raises InternalClientError on a dead link
                pause = self._pause
                log.warning(
                    "event fan-out connection lost (%s); reconnecting in %.0f s", exc, pause
                )
                health.report_failure(HEALTH_NAME, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                self._pause = min(pause * 2, MAX_PAUSE)

    async def _session(self, stop: asyncio.Event) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=self._keepalive,
            server_settings={"application_name": self._application_name},
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        own = conn.get_server_pid()

        def on_notify(_conn: object, sender: int, _channel: str, payload: str) -> None:
            if sender != own:
                self._incoming(sender, payload)

        try:
            await conn.add_listener(self._channel, on_notify)
            if self._connected_before:
                await self._resynced()
            self._connected_before = True
            self._pause = 1.0
            health.report_ok(HEALTH_NAME)
            log.info("event fan-out listening on %s", self._channel)
            while not stop.is_set():
                await self._flush(conn)
                await self._next(stop, lost)
                if lost.is_set():
                    raise ConnectionError("the LISTEN connection was closed")
                if not self._batch and self._outgoing.empty() and not stop.is_set():
                    await conn.fetchval("SELECT 1", timeout=self._keepalive)  # idle: still there?
            await self._flush(conn)
        finally:
            conn.terminate()

    async def _next(self, stop: asyncio.Event, lost: asyncio.Event) -> None:
        """Wait for an outgoing message, ``stop``, ``lost`` or the keepalive time."""
        if not self._outgoing.empty():
            return
        waits = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(lost.wait()),
            asyncio.ensure_future(self._ready()),
        ]
        try:
            await asyncio.wait(waits, timeout=self._keepalive, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _ready(self) -> None:
        payloads = await self._outgoing.get()
        self._batch.append(payloads)

    async def _flush(self, conn: asyncpg.Connection) -> None:
        """Send the kept batch and everything queued, one transaction per batch."""
        while self._batch or not self._outgoing.empty():
            while len(self._batch) < BATCH and not self._outgoing.empty():
                self._batch.append(self._outgoing.get_nowait())
            rows = [(self._channel, p) for payloads in self._batch for p in payloads]
            async with conn.transaction():
                await conn.executemany("SELECT pg_notify($1, $2)", rows)
            self._batch = []
            if self._dropped:
                log.warning(
                    "event fan-out dropped %d messages while its buffer was full", self._dropped
                )
                self._dropped = 0

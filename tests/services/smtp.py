"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

stop() and start() simulate an outage on the same port. Missing aiosmtpd is an error, not a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

try:
    from aiosmtpd.controller import Controller
except ImportError as exc:  # pragma: no cover - only when the test dependencies are missing
    raise RuntimeError(
        "aiosmtpd is not installed: the email tests need a real SMTP server (pip install aiosmtpd)"
    ) from exc

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class _Recorder:
    def __init__(self, sink: list[Received]) -> None:
        self.sink = sink

    async def handle_DATA(self, server, session, envelope) -> str:
        self.sink.append(
            Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd in its own thread; `received` lists every accepted message in order."""

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or _free_port()
        self.received: list[Received] = []
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(
            _Recorder(self.received), hostname=self.host, port=self.port, ready_timeout=10
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The first `count` messages, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.received)} of {count} messages arrived")
            await asyncio.sleep(0.02)
        return self.received[:count]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def running_smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)

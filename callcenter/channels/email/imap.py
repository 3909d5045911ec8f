"""A small IMAP client over aioimaplib: every call bounded by a timeout, a lost connection noticed
at once.

aioimaplib can wait forever when the server goes away (a FETCH or IDLE that never completes), so
each command races the connection-lost callback and a deadline; any failure raises ImapError
and the caller drops the client and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aioimaplib import aioimaplib

from callcenter import health
from callcenter.config import ConfigError, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

SECURITY = ("tls", "starttls", "none")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
COMMAND_TIMEOUT = 30.0
FETCH_TIMEOUT = 300.0
"""A whole batch; aioimaplib's own inactivity timer (COMMAND_TIMEOUT) catches a stalled one."""
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")


class ImapError(Exception):
    """The IMAP session is unusable (refused, timed out, dropped, or a NO/BAD answer)."""


def _failed(message: str) -> ImapError:
    """The error to raise, after marking IMAP failing on /status with it."""
    health.report_failure("imap", message)
    return ImapError(message)


def check_security(kind: str, security: str, host: str) -> None:
    """Refuse unknown modes, and plain text to anything but this machine."""
    if security not in SECURITY:
        raise ConfigError(f"{kind}_security must be one of {', '.join(SECURITY)}, not {security!r}")
    if security == "none" and host not in LOOPBACK:
        raise ConfigError(
            f"{kind}_security = none sends the password in clear text; "
            f"it is allowed only for 127.0.0.1/localhost, not {host!r}"
        )


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: str
    security: str = "tls"
    timeout: float = COMMAND_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Settings) -> ImapAccount:
        if not settings.imap_user:
            raise ConfigError("imap_user is not set: the email worker has no mailbox to read")
        check_security("imap", settings.imap_security, settings.imap_host)
        return cls(
            settings.imap_host,
            settings.imap_port,
            settings.imap_user,
            settings.imap_password,
            settings.imap_security,
        )

    @property
    def key(self) -> str:
        """The checkpoint's account name."""
        return f"{self.user}@{self.host}"


def uid_set(uids: Iterable[int]) -> str:
    """``1:3,7,9:10`` for 1, 2, 3, 7, 9, 10."""
    ranges: list[list[int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(f"{a}:{b}" if a != b else str(a) for a, b in ranges)


def parse_fetch(lines: list[Any]) -> list[tuple[int, bytes]]:
    """(uid, message bytes) from the lines of a ``UID FETCH ... (UID BODY.PEEK[])`` answer."""
    found: list[tuple[int, bytes]] = []
    uid: int | None = None
    body: bytes | None = None

    def flush() -> None:
        if uid is not None and body is not None:
            found.append((uid, body))

    for line in lines:
        if isinstance(line, bytearray | memoryview):
            body = bytes(line)
            continue
        if _FETCH_START.match(line):
            flush()
            uid, body = None, None
        match = _UID.search(line)
        if match and uid is None:
            uid = int(match.group(1))
    flush()
    return found


class ImapClient:
    def __init__(self, account: ImapAccount) -> None:
        self.account = account
        self._lost = asyncio.Event()
        self._client: aioimaplib.IMAP4 | None = None

    @property
    def has_idle(self) -> bool:
        return self._imap.has_capability("IDLE")

    @property
    def _imap(self) -> aioimaplib.IMAP4:
        if self._client is None:
            raise ImapError("not connected")
        return self._client

    def _on_lost(self, exc: Exception | None) -> None:
        log.info("IMAP connection to %s lost: %s", self.account.host, exc or "closed")
        self._lost.set()

    async def _run(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await ``awaitable`` unless the connection drops or the deadline passes first."""
        task = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, lost},
                timeout=timeout or self.account.timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            lost.cancel()
        if task in done:
            try:
                return task.result()
            except (aioimaplib.AioImapException, OSError, ssl.SSLError, TimeoutError) as exc:
                raise _failed(f"{type(exc).__name__}: {exc}") from exc
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise _failed("connection lost" if self._lost.is_set() else "no answer in time")

    async def _ok(self, awaitable: Awaitable[Any], what: str, timeout: float | None = None) -> Any:
        response = await self._run(awaitable, timeout)
        if response.result != "OK":
            detail = b" ".join(bytes(x) for x in response.lines[-1:]).decode(errors="replace")
            raise _failed(f"{what} failed: {response.result} {detail}")
        return response

    async def connect(self) -> None:
        """Connect, secure the connection as configured, and log in."""
        account = self.account
        context = ssl.create_default_context() if account.security != "none" else None
        self._client = aioimaplib.IMAP4(
            account.host,
            account.port,
            timeout=account.timeout,
            conn_lost_cb=self._on_lost,
            ssl_context=context if account.security == "tls" else None,
        )
        await self._run(self._imap.wait_hello_from_server())
        if account.security == "starttls":
            await self._starttls(context or ssl.create_default_context())
        await self._ok(self._imap.login(account.user, account.password), "LOGIN")

    async def _starttls(self, context: ssl.SSLContext) -> None:
        protocol = self._imap.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise _failed("the server does not offer STARTTLS; refusing to log in in clear text")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        await self._ok(protocol.execute(command), "STARTTLS")
        loop = asyncio.get_running_loop()
        transport = await self._run(
            loop.start_tls(protocol.transport, protocol, context, server_hostname=self.account.host)
        )
        protocol.transport = transport
        await self._run(protocol.capability())  # capabilities may change once secured

    async def select(self, mailbox: str) -> int:
        """Open a mailbox read-write; returns its UIDVALIDITY. Logged in and selected is what
        /status shows as IMAP ok."""
        response = await self._ok(self._imap.select(quote_mailbox(mailbox)), f"SELECT {mailbox}")
        for line in response.lines:
            found = _UIDVALIDITY.search(bytes(line))
            if found:
                health.report_ok("imap")
                return int(found.group(1))
        raise _failed(f"SELECT {mailbox}: the server sent no UIDVALIDITY")

    async def uids_after(self, last_uid: int) -> list[int]:
        """UIDs of the messages after ``last_uid``, ascending."""
        response = await self._ok(
            self._imap.uid_search("UID", f"{last_uid + 1}:*", charset=None), "UID SEARCH"
        )
        uids: set[int] = set()
        for line in response.lines[:-1]:
            uids.update(int(token) for token in bytes(line).split() if token.isdigit())
        return sorted(uid for uid in uids if uid > last_uid)  # "n:*" includes the last message

    async def fetch(self, uids: Iterable[int]) -> list[tuple[int, bytes]]:
        """The raw messages, without setting \\Seen."""
        response = await self._ok(
            self._imap.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])"),
            "UID FETCH",
            FETCH_TIMEOUT,
        )
        return parse_fetch(response.lines)

    async def mark_seen(self, uids: Iterable[int]) -> None:
        wanted = uid_set(uids)
        if wanted:
            await self._ok(
                self._imap.uid("store", wanted, "+FLAGS.SILENT", r"(\Seen)"), "UID STORE"
            )

    async def idle(self, seconds: float, stop: asyncio.Event) -> bool:
        """IDLE up to ``seconds`` or until ``stop``; True when the server reported a change."""
        queue = self._imap.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()
        idle = await self._run(self._imap.idle_start(timeout=seconds + self.account.timeout))
        push = asyncio.ensure_future(self._imap.wait_server_push(timeout=seconds))
        stopped = asyncio.ensure_future(stop.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({push, stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (push, stopped, lost):
                task.cancel()
        if self._lost.is_set():
            raise _failed("connection lost during IDLE")
        changed = push.done() and not push.cancelled() and push.exception() is None
        if self._imap.has_pending_idle():
            self._imap.idle_done()
        await self._ok(idle, "IDLE")
        return changed and push.result() != aioimaplib.STOP_WAIT_SERVER_PUSH

    async def close(self) -> None:
        """Log out politely if possible; always drop the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        if not self._lost.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), 5)
        transport = client.protocol.transport if client.protocol else None
        if transport is not None:
            transport.close()
        for task in list(client.tasks) + list(client.protocol.tasks):
            task.cancel()


def quote_mailbox(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string (names may contain spaces)."""
    if any(c in mailbox for c in "\r\n\x00"):
        raise ConfigError(f"mailbox name {mailbox!r} contains a line break")
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'

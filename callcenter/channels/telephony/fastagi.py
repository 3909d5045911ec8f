"""FastAGI: a small server of our own for Asterisk's ``AGI(agi://127.0.0.1:PORT/route)``.

Not panoramisk's FastAGI (see /work/shared/LIBRARIES.md): a peer that closes before the
blank line ending its headers makes it spin on ``read()`` returning ``b''`` and block the
loop, and it cannot take plain async handlers on Python 3.11. Here the headers are read with
a deadline and a size cap, every command waits for its answer with a timeout, and a handler
is an ``async def handler(request)``. The routes are listed in agi/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import asyncpg
from sqlalchemy import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.channels.telephony.lookup import (
    LOOKUP_SQL_POSTGRESQL,
    UNKNOWN,
    CallerInfo,
    caller_info,
    caller_number,
    lookup_caller,
    sanitize_name,
)
from callcenter.channels.telephony.routing import QueueNumbers
from callcenter.config import Settings
from callcenter.db import create_engine, session_factory

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
MAX_LINE = 4096
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_,-]*\))?")
_APP_SPECIAL = re.compile(r'[\\,()\[\]"]')
_RESPONSE = re.compile(r"(\d{3})(?: result=(-?\d*)(?: \((.*)\))?)?(?: .*)?")


class AgiError(Exception):
    """The AGI conversation broke: the peer left, hung up, or answered nonsense."""


class AgiHangup(AgiError):
    """The channel hung up while the handler was still at work."""


@dataclass(frozen=True)
class AgiResult:
    code: int
    result: str = ""
    data: str = ""


Handler = Callable[["AgiRequest"], Awaitable[None]]


class AgiRequest:
    """One AGI session: the channel's ``agi_*`` environment and a way to send commands."""

    def __init__(
        self,
        env: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        command_timeout: float,
    ) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout

    @property
    def route(self) -> str:
        """The path of ``agi://host:port/<route>?args``: ``lookup``."""
        return self.env.get("agi_network_script", "").partition("?")[0].strip("/")

    async def command(self, line: str) -> AgiResult:
        """Send one AGI command and wait for its ``200 result=...`` answer.

        Commands cannot be pipelined: Asterisk polls the socket, then reads a line through a
        stdio buffer, so a second command that arrived with the first sits unseen in that
        buffer while Asterisk waits on the socket."""
        if any(ch in line for ch in "\r\n\0"):
            raise ValueError(f"AGI command contains a line break: {line!r}")
        self._writer.write(line.encode() + b"\n")
        async with asyncio.timeout(self._timeout):
            await self._writer.drain()
            return await self._answer(line)

    async def _answer(self, line: str) -> AgiResult:
        while True:
            raw = await self._reader.readline()
            if not raw:
                raise AgiError("Asterisk closed the AGI connection")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if text == "HANGUP":
                continue  # AGISIGHUP notice; the next answer will say 511
            match = _RESPONSE.fullmatch(text)
            if match is None or text[3:4] == "-":
                continue  # continuation lines of a 520 usage message
            code = int(match.group(1))
            if code == 511:
                raise AgiHangup(text)
            if code != 200:
                raise AgiError(f"{line.split()[0]} refused: {text}")
            return AgiResult(code, match.group(2) or "", match.group(3) or "")

    async def set_variable(self, name: str, value: str) -> None:
        _check_name(name)
        await self.command(f"SET VARIABLE {name} {agi_quote(value)}")

    async def set_variables(self, values: Mapping[str, str]) -> None:
        """Set several channel variables with ONE command (``EXEC MSet``): each command is a
        round trip to Asterisk, the better part of a short AGI session.

        MSet skips a pair with an empty value, so empty values are left unset: the same to
        the dialplan's ``${NAME}`` on the fresh channel the AGI runs for.
        """
        pairs = []
        for name, value in values.items():
            _check_name(name)
            if value:
                pairs.append(f"{name}={mset_escape(value)}")
        if pairs:
            await self.command(f"EXEC MSet {agi_quote(','.join(pairs))}")


def _check_name(name: str) -> None:
    if not _VARIABLE_NAME.fullmatch(name):
        raise ValueError(f"not a channel variable name: {name!r}")


def agi_quote(value: str) -> str:
    """One AGI command argument: Asterisk splits commands on spaces outside double quotes
    and reads a backslash as "the next character is literal"."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mset_escape(value: str) -> str:
    """A value for an application argument list such as MSet's: Asterisk splits those on
    commas outside parentheses, brackets and quotes, so each of these characters (and the
    backslash itself) is escaped with a backslash, which Asterisk removes."""
    return _APP_SPECIAL.sub(r"\\\g<0>", value)


class FastAgiServer:
    """Serves AGI sessions on a loopback (or private) address, one task per connection."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        header_timeout: float = 5.0,
        command_timeout: float = 5.0,
        max_connections: int = 500,
    ) -> None:
        address = ipaddress.ip_address(host)
        # FastAGI has no authentication: loopback, or a private network such as the one
        # docker-compose.yml gives Asterisk and the app; never every address or a public one.
        if address.is_unspecified or not (address.is_loopback or address.is_private):
            raise ValueError(
                f"the FastAGI server binds loopback or private addresses only, not {host}"
            )
        self.routes = dict(routes)
        self.host = host
        self._port = port
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self._port, limit=MAX_LINE
        )
        log.info("FastAGI listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._slots.locked():
                log.warning("FastAGI: too many sessions, refusing one")
                return
            async with self._slots:
                env = await self._read_env(reader)
                if env is None:
                    return
                request = AgiRequest(env, reader, writer, self.command_timeout)
                handler = self.routes.get(request.route)
                if handler is None:
                    log.warning("FastAGI: no route %r", request.route)
                    return
                try:
                    await handler(request)
                except AgiHangup:
                    log.info("FastAGI %s: the caller hung up", request.route)
                except (AgiError, TimeoutError, OSError) as exc:
                    log.warning("FastAGI %s failed: %s", request.route, exc)
                except Exception:
                    log.exception("FastAGI %s handler crashed", request.route)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read_env(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        """The ``agi_name: value`` header block, or None for a peer that is not AGI."""
        env: dict[str, str] = {}
        size = 0
        try:
            async with asyncio.timeout(self.header_timeout):
                while True:
                    raw = await reader.readline()
                    if not raw:
                        log.warning("FastAGI: peer left before the end of its headers")
                        return None
                    size += len(raw)
                    if size > MAX_HEADER_BYTES:
                        log.warning("FastAGI: headers larger than %s bytes", MAX_HEADER_BYTES)
                        return None
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        return env
                    key, sep, value = line.partition(": ")
                    if not sep or not key.startswith("agi_"):
                        log.warning("FastAGI: not an AGI header line: %r", line[:80])
                        return None
                    env[key] = value
        except TimeoutError:
            log.warning("FastAGI: no complete headers within %ss", self.header_timeout)
        except (ValueError, asyncio.LimitOverrunError):
            log.warning("FastAGI: a header line longer than %s bytes", MAX_LINE)
        except OSError as exc:
            log.warning("FastAGI: connection error while reading headers: %s", exc)
        return None


APPLICATION_NAME = "callcenter-agi"
"""How the lookup's connections show in pg_stat_activity."""
_DEAD_CONNECTION = (
    asyncpg.InterfaceError,  # ConnectionDoesNotExistError: closed in the middle of a query
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # the server terminated the backend
    # ... and its notice, read but the closed socket not yet: "another operation is in progress"
    asyncpg.exceptions.InternalClientError,
    OSError,
)


class CallerLookups:
    """`lookup_caller` tuned for one short read per call.

    On PostgreSQL the lookup skips SQLAlchemy: an asyncpg pool whose connections prepare the
    statement once (warmed as each connection opens), with no BEGIN/ROLLBACK around the
    single SELECT and no pre-ping. A connection the server dropped is noticed by the lookup
    itself, which then runs once more on a fresh one. SQLite (tests, demos) goes through
    SQLAlchemy.
    """

    def __init__(self, url: str | URL, region: str = "RU", pool_size: int = 5) -> None:
        url = make_url(url)
        self.region = region
        self.pool_size = pool_size
        self.engine: AsyncEngine | None = None
        self._dsn: str | None = None
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        if url.get_backend_name() == "sqlite":
            self.engine = create_engine(url.render_as_string(hide_password=False))
        else:
            self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def start(self) -> None:
        """Open the pool now rather than on the first call."""
        if self._dsn is not None:
            await self._open()

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self.pool_size,
                    init=_prepare_lookup,
                    server_settings={"application_name": APPLICATION_NAME},
                )
            return self._pool

    async def lookup(self, number: str, name: str = "") -> CallerInfo:
        if self.engine is not None:
            async with self.engine.connect() as conn:
                return await lookup_caller(conn, number, name, self.region)
        fallback = CallerInfo(display_name=sanitize_name(name))
        e164 = caller_number(number, self.region)
        if e164 is None:
            return fallback
        row = await self._fetch(e164)
        return fallback if row is None else caller_info(row, fallback)

    async def _fetch(self, e164: str) -> asyncpg.Record | None:
        pool = self._pool or await self._open()
        try:
            async with pool.acquire() as conn:
                return await conn.fetchrow(LOOKUP_SQL_POSTGRESQL, e164)
        except _DEAD_CONNECTION:
            # A restarted server killed every pooled connection, not only this one (which the
            # pool replaces on release): have the idle ones replaced too before retrying.
            log.info("the lookup's database connection was dead; retrying on a new one")
            await pool.expire_connections()
        async with pool.acquire() as conn:
            return await conn.fetchrow(LOOKUP_SQL_POSTGRESQL, e164)

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _prepare_lookup(conn: asyncpg.Connection) -> None:
    """Run the lookup once on a new connection: the statement is prepared (asyncpg keeps it
    in the connection's statement cache) and the catalogue is warm before a call needs it."""
    await conn.fetchrow(LOOKUP_SQL_POSTGRESQL, "")


def lookup_route(
    lookups: CallerLookups, numbers: QueueNumbers | None = None, deadline: float = 1.0
) -> Handler:
    """``lookup[,dialled]``: set CC_CUSTOMER_ID, CALLERID(name), CC_LANGUAGE, CC_QUEUE_PRIO
    and CC_PREFERRED_AGENT from the caller number, and CC_QUEUE (unset: the dialplan's
    default) from the dialled number, the AGI's first argument. A database that does not
    answer within ``deadline`` seconds leaves the caller unknown rather than holding the call;
    the queue comes from memory either way."""

    async def lookup(request: AgiRequest) -> None:
        number = request.env.get("agi_callerid", "")
        name = request.env.get("agi_calleridname", "")
        queue = numbers.queue_for(request.env.get("agi_arg_1", "")) if numbers else ""
        try:
            async with asyncio.timeout(deadline):
                info = await lookups.lookup(number, name)
        except Exception as exc:  # the call must go on whatever the database does
            log.warning("lookup of a caller failed: %r", exc)
            await request.set_variables({"CC_CUSTOMER_ID": UNKNOWN, "CC_QUEUE": queue})
            return
        await request.set_variables({**info.variables(), "CC_QUEUE": queue})

    return lookup


async def run_agi_server(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    numbers: QueueNumbers | None = None,
) -> None:
    """Serve the FastAGI routes until ``stop`` is set (``callcenter agi``), on the database
    behind ``sessions`` through an engine of the server's own (see `CallerLookups`).
    ``numbers``: the queues' dialled numbers, shared with the admin pages that reload them
    (serve); reloaded here every few seconds all the same."""
    lookups = CallerLookups(sessions.kw["bind"].url, settings.default_region)
    numbers = numbers or QueueNumbers(sessions)
    route = lookup_route(lookups, numbers)
    server = FastAgiServer({"lookup": route}, settings.agi_host, settings.agi_port)
    refresher = asyncio.create_task(numbers.run(stop))
    try:
        await server.start()
        try:
            await lookups.start()
        except (OSError, asyncpg.PostgresError) as exc:
            # Calls go on without the lookup meanwhile; each lookup tries to connect again.
            log.warning("FastAGI: no database connection yet (%s)", exc)
        await stop.wait()
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await server.stop()
        await lookups.dispose()


async def agi_main(settings: Settings, _args: object = None) -> int:
    """``callcenter agi``: the FastAGI server alone, until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine = create_engine(settings.resolved_database_url)
    try:
        await run_agi_server(settings, session_factory(engine), stop)
    finally:
        await engine.dispose()
    return 0

"""ARI adapter: Asterisk's REST API and the ``/ari/events`` WebSocket of one Stasis app.

A thin adapter of our own on aiohttp rather than a client library: PyPI's ``ari`` (ari-py)
is Python 2 code (``urlparse``, swaggerpy), its successor aioari is abandoned, and asyncari
(anyio, beta) has no reconnect logic. The surface we use is small (a handful of REST calls
and one WebSocket), and the part that matters most, staying registered across Asterisk
restarts, is exactly what those libraries leave out.

Registration: Asterisk registers the app while its WebSocket is connected. The supervisor
reconnects with exponential backoff and jitter, checks with ``GET /applications/<app>``
that the app is registered again, then calls the ``on_connect`` hooks; events go through
one queue to one consumer task, in order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from callcenter import health

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], Awaitable[None]]
ConnectHook = Callable[[], Awaitable[None]]


class AriError(Exception):
    """A REST call failed; ``status`` is the HTTP status (0 when Asterisk was unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"ARI {status}: {message}")
        self.status = status


class AriAuthError(AriError):
    """Asterisk refused the ARI credentials."""


class AriClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        backoff: tuple[float, float] = (0.5, 30.0),
        heartbeat: float = 10.0,
        request_timeout: float = 10.0,
    ) -> None:
        if not password:
            raise ValueError("ARI needs a password (the ari_password secret)")
        self.base_url = base_url.rstrip("/")
        self.app = app
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._backoff = backoff
        self._heartbeat = heartbeat
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._handlers: list[EventHandler] = []
        self._hooks: list[ConnectHook] = []
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        self._first: asyncio.Future[None] | None = None
        self.connections = 0
        """How many times the WebSocket was (re)connected and the app registered."""

    def on_event(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def on_connect(self, hook: ConnectHook) -> None:
        """Run ``hook`` after every (re)registration, e.g. to resync state."""
        self._hooks.append(hook)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self, timeout: float | None = 10.0) -> None:
        """Connect and register, waiting up to ``timeout`` seconds for the first registration
        (TimeoutError; AriAuthError at once for wrong credentials). With ``timeout=None`` it
        returns at once and keeps trying in the background."""
        self._http = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        self._first = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="ari-supervisor"),
            asyncio.create_task(self._consume(), name="ari-events"),
        ]
        if timeout is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._first), timeout)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._connected.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """One REST call, ``path`` relative to ``/ari``; the decoded JSON answer or None."""
        if self._http is None:
            raise AriError(0, "the ARI client is not started")
        url = f"{self.base_url}/ari/{path.lstrip('/')}"
        try:
            async with self._http.request(method, url, params=params, json=body) as response:
                text = await response.text()
                if response.status == 401:
                    raise AriAuthError(401, "authentication failed")
                if response.status >= 400:
                    try:
                        message = json.loads(text).get("message", text)
                    except (ValueError, AttributeError):
                        message = text
                    raise AriError(response.status, f"{method} {path}: {message}")
                return json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AriError(0, f"{method} {path}: {exc!r}") from exc

    async def _supervise(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                await self._session()
                delay = self._backoff[0]  # a session that ran resets the backoff
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                first = self._first
                if isinstance(exc, AriAuthError) and first is not None and not first.done():
                    first.set_exception(exc)
                    first.exception()  # marked as retrieved; start() re-raises it
                log.warning("ARI connection failed: %r", exc)
                health.report_failure("ari", exc)
            self._connected.clear()
            pause = delay * random.uniform(0.8, 1.2)
            log.info("ARI: reconnecting in %.1fs", pause)
            await asyncio.sleep(pause)
            delay = min(delay * 2, self._backoff[1])

    async def _session(self) -> None:
        assert self._http is not None
        url = self.base_url.replace("http", "ws", 1) + "/ari/events"
        try:
            ws = await self._http.ws_connect(
                url,
                params={"app": self.app, "subscribeAll": "false"},
                heartbeat=self._heartbeat,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise AriAuthError(401, "authentication failed") from exc
            raise
        async with ws:
            await self.request("GET", f"applications/{self.app}")  # registered again
            self.connections += 1
            self._connected.set()
            health.report_ok("ari")
            log.info("ARI: application %r registered (connection %d)", self.app, self.connections)
            for hook in self._hooks:
                try:
                    await hook()
                except Exception:
                    log.exception("ARI on_connect hook %r failed", hook)
            if self._first is not None and not self._first.done():
                self._first.set_result(None)
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    try:
                        self._events.put_nowait(json.loads(message.data))
                    except ValueError:
                        log.warning("ARI: a WebSocket message that is not JSON")
                elif message.type is aiohttp.WSMsgType.ERROR:
                    break
        log.warning("ARI: the events WebSocket closed (%s)", ws.close_code)
        health.report_failure("ari", f"the events WebSocket closed (code {ws.close_code})")

    async def _consume(self) -> None:
        while True:
            event = await self._events.get()
            for handler in self._handlers:
                try:
                    await handler(event)
                except Exception:
                    log.exception("ARI handler %r failed on %s", handler, event.get("type"))

"""AMI adapter: one supervised connection to Asterisk's Manager Interface.

Built on panoramisk 1.4's protocol for actions (ActionIDs, multi-event responses) with three
changes, see /work/shared/LIBRARIES.md: frames are decoded whole (amiframes), events go
through one asyncio.Queue to one consumer task, and the connection is supervised here
(reconnect with backoff, a Ping watchdog for half-open connections, a hook after each
login so callers can resync state lost during an outage). Callers only see plain dicts and
`AmiEvent`; no panoramisk type leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from callcenter.channels.telephony.amiframes import (
    AmiEvent,
    AmiFrameError,
    EventRoutes,
    FrameReader,
    WireEvent,
    decode,
    event_frame,
    event_frames,
    parse_frame,
)

log = logging.getLogger(__name__)

EventListener = Callable[[AmiEvent], Awaitable[None] | None]
LoginHook = Callable[["AmiClient"], Awaitable[None]]


class AmiError(Exception):
    """Base class of this adapter's errors."""


class AmiConnectionError(AmiError, ConnectionError):
    """Not connected, or the connection was lost while waiting for a response."""


class AmiAuthError(AmiError):
    """Asterisk refused the login."""


@dataclass(frozen=True)
class AmiResponse:
    """The response to an action, with the events of a list action (QueueStatus...)."""

    headers: dict[str, str]
    events: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.headers.get("Response") in ("Success", "Goodbye")


def _plain(message: Message) -> dict[str, str]:
    return {k: "\n".join(v) if isinstance(v, list) else v for k, v in message.items()}


def _check_value(value: str) -> str:
    # A line break would let a caller-supplied value inject AMI headers or whole actions.
    if "\r" in value or "\n" in value:
        raise ValueError(f"AMI header value contains a line break: {value!r}")
    return value


def _is_fully_booted(frame: bytes) -> bool:
    return frame == b"Event: FullyBooted" or frame.startswith(b"Event: FullyBooted\r\n")


class _Protocol(AMIProtocol):
    """panoramisk's protocol, reading bytes with FrameReader instead of decoding each read."""

    def __init__(self, client: AmiClient, lost: asyncio.Future[None]) -> None:
        self._client = client
        self._lost = lost
        self._frames = FrameReader()
        self.booted = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.factory = self._client
        self.encoding = "utf-8"

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._frames.feed_frames(data)
        except AmiFrameError as exc:
            log.error("closing AMI connection: %s", exc)
            self.transport.abort()
            return
        # Events are queued undecoded: most of Asterisk's stream interests no listener.
        if not frames:
            return
        events, others = event_frames(frames, bool(self.responses))
        for frame in others:
            headers = parse_frame(decode(frame))
            if "Response" in headers or "Event" in headers:
                self.handle_message(Message(headers))
        if events:
            if not self.booted.is_set() and any(map(_is_fully_booted, events)):
                self.booted.set()
            self._client._enqueue(events)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for action in {id(a): a for a in self.responses.values()}.values():
            if not action.future.done():
                action.future.set_exception(AmiConnectionError("AMI connection lost"))
        self.responses.clear()
        if not self._lost.done():
            self._lost.set_result(None)

    def close(self) -> None:
        self.transport.close()


class AmiClient:
    """A supervised AMI connection: `start()`, `send_action()`, `stop()`."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_login: LoginHook | None = None,
        events: str = "on",
        ping_interval: float = 10.0,
        pong_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        boot_timeout: float = 60.0,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self._on_login = on_login
        self._events = events
        self.ping_interval, self.pong_timeout = ping_interval, pong_timeout
        self.connect_timeout = connect_timeout
        self.boot_timeout = boot_timeout
        self._backoff = backoff
        self._listeners: list[tuple[EventListener, frozenset[str] | None]] = []
        self._routes = EventRoutes(self._listeners)
        self._queue: asyncio.Queue[list[bytes]] = asyncio.Queue()
        self._protocol: _Protocol | None = None
        self._logged_in = asyncio.Event()
        self._refused = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_error: BaseException | None = None
        self.logins = 0

    # Used by panoramisk's protocol for events that carry an unknown ActionID.
    def dispatch(self, message: Message) -> None:
        self._enqueue([event_frame(AmiEvent(message["Event"], _plain(message)))])

    def _enqueue(self, frames: list[bytes]) -> None:
        """Queue undecoded frames for the listeners; those that are no event are skipped."""
        self._queue.put_nowait(frames)

    def add_listener(self, listener: EventListener, events: Collection[str] | None = None) -> None:
        """Call `listener` (plain or async) with every event, in order, from one task;
        with `events`, only with the events of those names (the others are never decoded)."""
        self._listeners.append((listener, None if events is None else frozenset(events)))
        self._routes.clear()

    def remove_listener(self, listener: EventListener) -> None:
        """Stop calling `listener` (every registration of it; a bound method equals another
        made from the same object)."""
        self._listeners[:] = [entry for entry in self._listeners if entry[0] != listener]
        self._routes.clear()

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    async def start(self, timeout: float = 10.0) -> None:
        """Connect and log in; raise if the first login does not succeed within `timeout`."""
        self._tasks = [
            asyncio.create_task(self._consume(), name="ami-events"),
            asyncio.create_task(self._supervise(), name="ami-connection"),
        ]
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._logged_in, self._refused)]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if self._logged_in.is_set():
            return
        error = self._last_error
        await self.stop()
        if isinstance(error, AmiAuthError):
            raise error
        raise AmiConnectionError(
            f"no AMI login at {self.host}:{self.port} within {timeout}s: {error!r}"
        ) from error

    async def stop(self) -> None:
        """Close the connection and stop the tasks; events still queued are dropped."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def send_action(
        self,
        action: Mapping[str, str | Sequence[str]],
        *,
        timeout: float = 10.0,
        as_list: bool | None = None,
    ) -> AmiResponse:
        """Send one action (waiting up to `timeout` for a connection) and return its response."""
        try:
            await asyncio.wait_for(self._logged_in.wait(), timeout)
        except TimeoutError:
            raise AmiConnectionError("not connected to AMI") from None
        if self._protocol is None:
            raise AmiConnectionError("AMI connection lost")
        return await self._send(self._protocol, action, timeout, as_list)

    async def _send(
        self,
        protocol: _Protocol,
        action: Mapping[str, str | Sequence[str]],
        timeout: float,
        as_list: bool | None = None,
    ) -> AmiResponse:
        checked: dict[str, str | list[str]] = {}
        for key, value in action.items():
            _check_value(key)
            if isinstance(value, str):
                checked[key] = _check_value(value)
            else:
                checked[key] = [_check_value(v) for v in value]
        request = actions.Action(checked, as_list=as_list)
        future = protocol.send(request, as_list=as_list)
        try:
            result = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            protocol.responses.pop(request.id, None)
            raise
        messages = result if isinstance(result, list) else [result]
        return AmiResponse(_plain(messages[0]), [_plain(m) for m in messages[1:]])

    async def _consume(self) -> None:
        # The hot path: one dict lookup routes a frame; an event is built only when some
        # listener wants it, and decoded only when one reads its headers.
        routes = self._routes
        while True:
            for frame in await self._queue.get():
                # Up to the first CR, which ends the first line (AMI lines end in CRLF):
                # a one-byte separator is found with memchr, cheaper than b"\r\n".
                name, listeners = routes[frame.partition(b"\r")[0]]
                if not listeners:
                    continue
                event = WireEvent()  # what `lazy_event` does, without the call
                event.name, event._headers, event._frame = name, None, frame
                if len(listeners) == 1:  # the rule (the telephony service): no loop iterator
                    try:
                        result = listeners[0](event)
                        if result is not None:  # an async listener's awaitable
                            await result
                    except Exception:
                        log.exception("AMI listener failed on %s", name)
                    continue
                for listener in listeners:
                    try:
                        result = listener(event)
                        if result is not None:  # an async listener's awaitable
                            await result
                    except Exception:
                        log.exception("AMI listener failed on %s", name)

    async def _supervise(self) -> None:
        low, high = self._backoff
        delay = low
        while True:
            try:
                await self._session()
                delay = low
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, AmiError) as exc:
                self._last_error = exc
                if isinstance(exc, AmiAuthError):
                    self._refused.set()
                log.warning("AMI %s:%s: %s; retrying in %.1fs", self.host, self.port, exc, delay)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, high)

    async def _session(self) -> None:
        """One connection: log in, resync, then watch it until it is lost."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self, lost), self.host, self.port),
            self.connect_timeout,
        )
        try:
            login = {"Action": "Login", "Username": self._username, "Secret": self._secret}
            response = await self._send(protocol, {**login, "Events": self._events}, 10.0)
            if not response.ok:
                raise AmiAuthError(f"AMI login refused: {response.headers.get('Message')}")
            if self._events != "off":
                # AMI accepts logins while Asterisk is still loading modules; a resync before
                # FullyBooted would see no queues. Asterisk sends it at login once booted.
                await asyncio.wait_for(protocol.booted.wait(), self.boot_timeout)
            self._protocol = protocol
            self.logins += 1
            self._logged_in.set()
            log.info("AMI logged in to %s:%s (login %d)", self.host, self.port, self.logins)
            if self._on_login is not None:
                try:
                    await self._on_login(self)
                except (AmiError, TimeoutError):
                    log.exception("AMI resync after login failed")
            await self._watch(protocol, lost)
        finally:
            self._logged_in.clear()
            self._protocol = None
            transport.abort()

    async def _watch(self, protocol: _Protocol, lost: asyncio.Future[None]) -> None:
        """Return when the connection is lost or a Ping goes unanswered (half-open)."""
        while True:
            done, _ = await asyncio.wait([lost], timeout=self.ping_interval)
            if done:
                log.warning("AMI connection to %s:%s lost", self.host, self.port)
                return
            try:
                await self._send(protocol, {"Action": "Ping"}, self.pong_timeout)
            except TimeoutError:
                log.warning("AMI: no Pong within %.1fs; reconnecting", self.pong_timeout)
                return
            except AmiConnectionError:
                return

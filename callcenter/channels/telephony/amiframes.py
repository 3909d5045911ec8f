"""AMI wire format: split a byte stream into frames and frames into headers.

AMI frames are `Key: Value` lines ending in CRLF, each frame ending in an empty line. The
stream is split on b"\\r\\n\\r\\n" *before* decoding: those bytes never occur inside a UTF-8
character, so a Russian caller name cut in half by a TCP read is decoded whole (panoramisk
1.4 decodes every read on its own and silently drops the halves).

Most of Asterisk's stream (Newexten, VarSet, RTCP...) is read by nobody, so an event keeps its
frame's bytes and decodes its headers only when a listener first asks for them.
"""

from __future__ import annotations

import logging
from typing import TypeVar

log = logging.getLogger(__name__)

FRAME_END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
EVENT_PREFIX = b"Event: "
ACTION_ID = b"\r\nActionID:"
# A frame longer than this is not AMI; stop rather than buffer without bound.
MAX_FRAME = 1 << 20
# Event names are few; a peer sending endless new ones must not grow the cache without bound.
MAX_EVENT_NAMES = 1024
# Legacy Russian systems may still send Windows-1251 caller names (invalid as UTF-8).
FALLBACK_ENCODING = "cp1251"

L = TypeVar("L")


class AmiFrameError(ValueError):
    """The peer does not speak AMI (oversized frame)."""


class AmiEvent:
    """One AMI event. Repeated headers (ChanVariable) have their values joined by "\\n".

    Events read from the wire (`lazy_event`) keep their frame's bytes and decode them
    on the first access to ``headers``: most of Asterisk's stream is read by nobody.
    """

    __slots__ = ("_frame", "_headers", "name")

    def __init__(self, name: str, headers: dict[str, str]) -> None:
        self.name = name
        self._headers: dict[str, str] | None = headers
        self._frame = b""

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = parse_frame(decode(self._frame))
            self._frame = b""
        return self._headers

    def values(self, key: str) -> list[str]:
        """Every value of a header that may repeat."""
        value = self.headers.get(key)
        return [] if value is None else value.split("\n")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AmiEvent):
            return NotImplemented
        return self.name == other.name and self.headers == other.headers

    __hash__ = None  # type: ignore[assignment]  # mutable headers, like a dict

    def __repr__(self) -> str:
        return f"AmiEvent({self.name!r}, {self.headers!r})"


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("AMI frame is not UTF-8, decoding as %s", FALLBACK_ENCODING)
        return data.decode(FALLBACK_ENCODING, "replace")


def parse_frame(text: str) -> dict[str, str]:
    """Headers of one decoded frame (without its terminating empty line)."""
    lines = text.split("\r\n")
    try:
        headers = dict(line.split(": ", 1) for line in lines)  # type: ignore[misc]
    except ValueError:
        headers = None  # a line without ": " (e.g. "Key:" with an empty value)
    if headers is not None and len(headers) == len(lines):
        return headers
    headers = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep:
            continue
        value = value[1:] if value.startswith(" ") else value
        headers[key] = f"{headers[key]}\n{value}" if key in headers else value
    return headers


def event_frames(frames: list[bytes], action_pending: bool) -> tuple[list[bytes], list[bytes]]:
    """The `frames` (see `FrameReader.feed_frames`) that go to the event listeners,
    undecoded, and those that answer a pending action, each in order.

    While no action is pending nothing can answer one, so the frames are not even searched
    for an ActionID: every frame goes to the listeners' side, where `EventRoutes` passes
    over those that are no event (an unanswered response is dropped either way).
    """
    if not action_pending:
        return frames, []
    events: list[bytes] = []
    others: list[bytes] = []
    for frame in frames:
        if frame.startswith(EVENT_PREFIX) and ACTION_ID not in frame:
            events.append(frame)
        elif frame.strip(b"\r\n"):
            others.append(frame)
    return events, others


def event_frame(event: AmiEvent) -> bytes:
    """An event back in wire form, for the rare event decoded before it was queued."""
    lines = [f"{key}: {line}" for key, value in event.headers.items() for line in value.split("\n")]
    return "\r\n".join(lines).encode()


class WireEvent(AmiEvent):
    """An event read from the wire: created bare, then given its name and frame."""

    __slots__ = ()
    # object's own __init__: `WireEvent()` runs no Python code, the cheapest object to make.
    __init__ = object.__init__


def lazy_event(name: str, frame: bytes) -> AmiEvent:
    """An event whose headers are decoded from `frame` on first access."""
    event = WireEvent()
    event.name, event._headers, event._frame = name, None, frame
    return event


class EventRoutes(dict[bytes, tuple[str, tuple[L, ...]]]):
    """Who gets an event, keyed by its frame's first line: the decoded event
    name and the listeners that asked for it, filled on first sight of each line.

    A frame that is no event, or an event nobody asked for, maps to no listeners and is
    never decoded. The cache is bounded: a peer sending endless new names must not grow it.
    Clear it when the listeners change.
    """

    def __init__(self, listeners: list[tuple[L, frozenset[str] | None]]) -> None:
        super().__init__()
        self._listeners = listeners

    def __missing__(self, head: bytes) -> tuple[str, tuple[L, ...]]:
        if head.startswith(EVENT_PREFIX):
            name = decode(head[len(EVENT_PREFIX) :])
            listeners = tuple(
                listener for listener, names in self._listeners if names is None or name in names
            )
            route = (name, listeners)
        else:
            route = ("", ())
        if len(self) < MAX_EVENT_NAMES:
            self[head] = route
        return route


class FrameReader:
    """Incremental AMI parser: feed it bytes as they arrive, get whole frames back."""

    def __init__(self) -> None:
        self._rest = b""
        self._banner_pending = True
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[dict[str, str]]:
        """Headers of every frame completed by `data`, in order."""
        return [
            parse_frame(decode(frame)) for frame in self.feed_frames(data) if frame.strip(b"\r\n")
        ]

    def feed_frames(self, data: bytes) -> list[bytes]:
        """The undecoded frames completed by `data`, in order (an empty one where the stream
        has a stray blank line).

        Frames are split off whole before anything decodes them, so each holds only whole
        UTF-8 characters however the reads cut the stream. The bytes are copied no more than
        a plain ``split`` needs: once, to join a read to the unfinished frame before it."""
        if self._rest:
            data = self._rest + data
        if self._banner_pending:
            data = self._take_banner(data)
            if self._banner_pending:
                self._rest = data
                return []
        frames = data.split(FRAME_END)
        self._rest = frames.pop()
        if len(self._rest) > MAX_FRAME:
            raise AmiFrameError(f"AMI frame longer than {MAX_FRAME} bytes")
        return frames

    def _take_banner(self, data: bytes) -> bytes:
        """Consume the greeting line ("Asterisk Call Manager/x.y.z") once it is complete."""
        if len(data) < len(BANNER_PREFIX) and BANNER_PREFIX.startswith(data):
            return data
        if data.startswith(BANNER_PREFIX):
            eol = data.find(b"\r\n")
            if eol < 0:
                return data
            self.banner = data[:eol].decode("ascii", "replace")
            data = data[eol + 2 :]
        self._banner_pending = False
        return data


def event_of(headers: dict[str, str]) -> AmiEvent | None:
    """The event in a frame's headers, or None for responses."""
    name = headers.get("Event")
    return None if name is None else AmiEvent(name, headers)

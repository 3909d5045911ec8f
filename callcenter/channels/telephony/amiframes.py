"""AMI wire format: split a byte stream into frames and frames into headers.

AMI frames are `Key: Value` lines ending in CRLF, each frame ending in an empty line. The
stream is split on b"\\r\\n\\r\\n" *before* decoding: those bytes never occur inside a UTF-8
character, so a Russian caller name cut in half by a TCP read is decoded whole (panoramisk
1.4 decodes every read on its own and silently drops the halves).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

log = logging.getLogger(__name__)

FRAME_END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
# A frame longer than this is not AMI; stop rather than buffer without bound.
MAX_FRAME = 1 << 20
# Legacy Russian systems may still send Windows-1251 caller names (invalid as UTF-8).
FALLBACK_ENCODING = "cp1251"


class AmiFrameError(ValueError):
    """The peer does not speak AMI (oversized frame)."""


class AmiEvent(NamedTuple):
    """One AMI event. Repeated headers (ChanVariable) have their values joined by "\\n"."""

    name: str
    headers: dict[str, str]

    def values(self, key: str) -> list[str]:
        """Every value of a header that may repeat."""
        value = self.headers.get(key)
        return [] if value is None else value.split("\n")


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


class FrameReader:
    """Incremental AMI parser: feed it bytes as they arrive, get whole frames back."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._banner_pending = True
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[dict[str, str]]:
        """Headers of every frame completed by `data`, in order."""
        buffer = self._buffer
        searched = max(0, len(buffer) - 3)
        buffer += data
        if self._banner_pending:
            if not self._take_banner():
                return []
            searched = 0
        end = buffer.rfind(FRAME_END, searched)
        if end < 0:
            if len(buffer) > MAX_FRAME:
                raise AmiFrameError(f"AMI frame longer than {MAX_FRAME} bytes")
            return []
        text = decode(bytes(buffer[:end]))
        del buffer[: end + 4]
        return [parse_frame(frame) for frame in text.split("\r\n\r\n") if frame.strip("\r\n")]

    def _take_banner(self) -> bool:
        """Consume the greeting line ("Asterisk Call Manager/x.y.z") once it is complete."""
        buffer = self._buffer
        if len(buffer) < len(BANNER_PREFIX) and BANNER_PREFIX.startswith(bytes(buffer)):
            return False
        self._banner_pending = False
        if buffer.startswith(BANNER_PREFIX):
            eol = buffer.find(b"\r\n")
            if eol < 0:
                self._banner_pending = True
                return False
            self.banner = buffer[:eol].decode("ascii", "replace")
            del buffer[: eol + 2]
        return True


def event_of(headers: dict[str, str]) -> AmiEvent | None:
    """The event in a frame's headers, or None for responses."""
    name = headers.get("Event")
    return None if name is None else AmiEvent(name, headers)

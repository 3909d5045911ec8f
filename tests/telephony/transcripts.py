"""AMI transcripts for tests: blank-line separated blocks of "Key: Value" lines.

Each block is one AMI event as Asterisk sends it, plus a pseudo-header ``At: <seconds>`` (when
it arrived, from the start of the transcript) that is not passed on. A block with a
``Transcript: login`` or ``Transcript: reconnect`` header marks where the adapter (re)logged in:
the player calls ``resync_begin()`` and the QueueStatus/CoreShowChannels answers follow.
Lines starting with ``#`` are comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from callcenter.channels.telephony.state import LiveState

FIXTURES = Path(__file__).parent / "fixtures"
MARKERS = {"login", "reconnect"}


class TranscriptError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    offset: float
    headers: dict[str, str]
    marker: str | None = None


def parse(text: str, source: str = "<transcript>") -> list[Step]:
    steps: list[Step] = []
    offset = 0.0
    block: dict[str, str] = {}
    start = 0
    for number, line in enumerate([*text.splitlines(), ""], 1):
        line = line.rstrip("\r")
        if line.startswith("#"):
            continue
        if not line.strip():
            if block:
                offset = _offset(block.pop("At", None), offset, source, start)
                marker = block.pop("Transcript", None)
                if marker is not None and marker not in MARKERS:
                    raise TranscriptError(f"{source}:{start}: unknown marker {marker!r}")
                steps.append(Step(offset, block, marker))
            block = {}
            continue
        key, sep, value = line.partition(":")
        if not sep or not key:
            raise TranscriptError(f"{source}:{number}: not a 'Key: Value' line: {line!r}")
        if not block:
            start = number
        block[key] = value[1:] if value.startswith(" ") else value
    return steps


def _offset(value: str | None, previous: float, source: str, line: int) -> float:
    if value is None:
        return previous
    try:
        offset = float(value)
    except ValueError:
        raise TranscriptError(f"{source}:{line}: At is not a number: {value!r}") from None
    if offset < previous:
        raise TranscriptError(f"{source}:{line}: At goes back in time ({offset} < {previous})")
    return offset


def load(name: str) -> list[Step]:
    path = FIXTURES / name
    return parse(path.read_text(encoding="utf-8"), path.name)


def play(
    state: LiveState,
    steps: list[Step],
    start: datetime,
    *,
    after: float = float("-inf"),
    until: float = float("inf"),
) -> list[object]:
    """Feed `state` the steps with `after` < offset <= `until`; return the domain events."""
    events: list[object] = []
    for step in steps:
        if not after < step.offset <= until:
            continue
        if step.marker is not None:
            state.resync_begin()
        else:
            events += state.apply(step.headers, start + timedelta(seconds=step.offset))
    return events

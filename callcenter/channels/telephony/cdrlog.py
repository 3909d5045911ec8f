"""Inbound calls that ended while nobody listened on AMI and never reached a queue, recovered
from Asterisk's CDR file.

queue_log (queuelog.py) knows only the calls that entered a queue. A caller who hangs up in
the greeting or the lookup, a call rejected for an invalid number, and a call answered by the
customer's preferred agent (a Dial before the queue) appear only in the call detail records:
asterisk-config/cdr_custom.conf writes one quoted CSV line per record to ``log/cdr.csv``, with
the fields of ``FIELDS`` in that order. Every record of a call carries its Linkedid; the
inbound caller's channel is the call's first (its Uniqueid is the Linkedid) and its context is
one of ``INBOUND_CONTEXTS``. A call with a record in the Queue application is left to
queue_log, so a call both files describe is not doubled (the recorder also stores once per
Linkedid). Asterisk writes a call's records together when the caller's channel is gone.

The checkpoint (inode and offset, like queue_log's) moves past a record once the calls before
it are stored. Without a checkpoint (the first start) the file is skipped to its end: calls
that ended before the product ran are not imported; when Asterisk has written no file yet (it
does with the first call), the checkpoint is its start. When the file was rotated (renamed),
the rest of the old file is read first if it is still beside it; a truncated file is read
from its start (one truncated and written again past the checkpoint too, unless a line break
happens to sit just before it). A record that cannot be read is logged and skipped.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from callcenter.channels.telephony.events import CallEnded
from callcenter.channels.telephony.logfiles import Checkpoint, CheckpointedFile, server_files
from callcenter.config import Settings
from callcenter.models import CallOutcome

log = logging.getLogger(__name__)

FIELDS = (
    "linkedid",
    "uniqueid",
    "start",
    "answer",
    "end",
    "src",
    "clid",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "disposition",
)
INBOUND_CONTEXTS = frozenset({"from-trunk", "inbound"})
"""Where customer calls run before the queue (dialplan/extensions.conf)."""
MAX_LINES = 8
"""The most lines one record may span (line breaks in a caller name)."""
_CLID = re.compile(r'"(?P<name>.*)" <(?P<number>[^<>]*)>', re.DOTALL)


def _decode(raw: bytes) -> str:
    """UTF-8 as Asterisk writes it; a caller id a provider sent in cp1251 is read as such."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251", errors="replace")


def _records(data: bytes, base: int) -> tuple[list[tuple[int, bytes]], int]:
    """The whole records in ``data`` (read from file offset ``base``), each with its offset,
    and the offset after the last whole line. A quoted value may hold a line break, so a line
    with an open quote takes the next ones until the quotes close, at most ``MAX_LINES`` of
    them; a line whose quote never closes is returned alone (and is refused as malformed). A
    last line without its line break is still being written and is left for later."""
    lines: list[tuple[int, bytes]] = []
    position = 0
    while (newline := data.find(b"\n", position)) != -1:
        lines.append((position, data[position : newline + 1]))
        position = newline + 1
    records: list[tuple[int, bytes]] = []
    i = 0
    while i < len(lines):
        offset, text = lines[i]
        taken, quotes = 1, text.count(b'"')
        while quotes % 2 and taken < MAX_LINES and i + taken < len(lines):
            text += lines[i + taken][1]
            quotes += lines[i + taken][1].count(b'"')
            taken += 1
        if quotes % 2:
            text, taken = lines[i][1], 1
        records.append((base + offset, text))
        i += taken
    return records, base + position


def _time(value: str) -> datetime | None:
    """A Unix time with microseconds; None for Asterisk's 0 (never). ValueError if unreadable."""
    seconds = float(value)
    if not 0 <= seconds < 2**33:
        raise ValueError(f"not a time: {value!r}")
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


@dataclass(frozen=True)
class Record:
    """One CDR line: a segment of a call from one channel's point of view."""

    linkedid: str
    uniqueid: str
    start: datetime
    answer: datetime | None
    end: datetime
    src: str
    clid: str
    dcontext: str
    channel: str
    dstchannel: str
    lastapp: str
    disposition: str


def record(raw: bytes) -> Record:
    """One line of the CDR file; ValueError when it is not a record cdr_custom.conf writes."""
    text = _decode(raw).rstrip("\r\n")
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise ValueError(str(exc)) from None
    if len(rows) != 1 or len(rows[0]) != len(FIELDS):
        raise ValueError(f"{len(rows[0]) if rows else 0} fields instead of {len(FIELDS)}")
    values = dict(zip(FIELDS, rows[0], strict=True))
    start, end = _time(values.pop("start")), _time(values.pop("end"))
    answer = _time(values.pop("answer"))
    if start is None or end is None or not values["linkedid"] or not values["uniqueid"]:
        raise ValueError("no call id, start or end")
    return Record(start=start, answer=answer, end=end, **values)


def caller_name(clid: str, number: str) -> str:
    """The name in a caller id as Asterisk writes it: ``"name" <number>``, a bare name or the
    number alone. Quotes inside the name are not escaped by Asterisk, so the name runs from the
    first quote to the last ``" <``."""
    match = _CLID.fullmatch(clid)
    if match:
        return match["name"]
    return "" if clid in ("", number) else clid


def _is_inbound(first: Record) -> bool:
    return first.uniqueid == first.linkedid and first.dcontext in INBOUND_CONTEXTS


def _interface(channel: str) -> str:
    """PJSIP/1001-00000003 -> PJSIP/1001."""
    return channel.rpartition("-")[0] or channel


def _ended(records: list[Record]) -> CallEnded | None:
    """The call of one Linkedid's records; None when it is no inbound call or queue_log's."""
    if any(r.lastapp == "Queue" for r in records):
        return None
    caller = [r for r in records if r.uniqueid == r.linkedid]
    if not caller or not _is_inbound(caller[0]):
        return None
    first = caller[0]
    started = min(r.start for r in caller)
    ended = max(r.end for r in caller)
    agent = next(
        (
            r
            for r in caller
            if r.lastapp == "Dial"
            and r.disposition == "ANSWERED"
            and r.dstchannel.startswith("PJSIP/")
        ),
        None,
    )
    if agent is None:
        outcome, interface, answered, wait, talk = CallOutcome.MISSED, None, None, 0, 0
    else:
        # The caller's channel was answered before the Dial: the CDR's answer time is that
        # one, so the talk counts from it (the lookup and the ringing included).
        answered = agent.answer or agent.start
        outcome, interface = CallOutcome.ANSWERED, _interface(agent.dstchannel)
        wait = int((answered - started).total_seconds())
        talk = int((agent.end - answered).total_seconds())
    return CallEnded(
        linkedid=first.linkedid,
        queue=None,
        caller_number=first.src,
        caller_name=caller_name(first.clid, first.src),
        agent_interface=interface,
        wait_seconds=wait,
        talk_seconds=talk,
        outcome=outcome,
        started_at=started,
        answered_at=answered,
        ended_at=ended,
    )


def parse(data: bytes, base: int = 0) -> tuple[list[CallEnded], int]:
    """The inbound calls that never reached a queue in ``data`` (CDR lines from file offset
    ``base``), in the order of the file, and the offset to read from next time."""
    by_call: dict[str, list[Record]] = {}
    records, resume = _records(data, base)
    for offset, raw in records:
        try:
            parsed = record(raw)
        except ValueError as exc:
            log.warning("CDR record at offset %d skipped (%s): %r", offset, exc, raw[:300])
            continue
        by_call.setdefault(parsed.linkedid, []).append(parsed)
    calls = [_ended(records) for records in by_call.values()]
    return [call for call in calls if call is not None], resume


class CdrLog(CheckpointedFile):
    """One Asterisk's CDR file and the checkpoint of what was read of it."""

    def _rotated(self, saved: Checkpoint) -> bytes:
        """The unread rest of the file the checkpoint was taken in, when it was renamed and
        is still in the same folder (logrotate's default); else nothing."""
        with os.scandir(self.path.parent) as entries:
            for entry in entries:
                if entry.name.startswith(self.path.name) and entry.inode() == saved.inode:
                    with open(entry.path, "rb") as fh:
                        fh.seek(saved.offset)
                        rest = fh.read()
                    log.warning("%s was rotated; reading the rest of %s", self.path, entry.name)
                    return rest
        log.warning("%s was rotated or truncated; reading it from its start", self.path)
        return b""

    def read(
        self, members: Mapping[str, str] | None = None
    ) -> tuple[list[CallEnded], Checkpoint] | None:
        """The calls ended since the checkpoint and the checkpoint after them (to `save` once
        they are stored); None when the file is gone and a checkpoint of it stays. ``members``
        is unused (the CDR names interfaces): the same call as QueueLog.read."""
        try:
            with self.path.open("rb") as fh:
                stat = os.fstat(fh.fileno())
                saved = self._checkpoint()
                if saved is None:  # the first start: only what comes from now on
                    data = fh.read()
                    _, end = _records(data, 0)
                    return [], Checkpoint(stat.st_ino, end)
                earlier = b""
                base = 0
                if saved.inode == stat.st_ino and saved.offset <= stat.st_size:
                    # Past a record there is a line break; else it was truncated and rewritten.
                    fh.seek(max(saved.offset - 1, 0))
                    if saved.offset == 0 or fh.read(1) == b"\n":
                        base = saved.offset
                    else:
                        log.warning("%s was truncated; reading it from its start", self.path)
                elif saved.inode == 0 and saved.offset == 0:
                    pass  # taken before Asterisk wrote the file, or damaged (logged)
                elif saved.inode != stat.st_ino:
                    earlier = self._rotated(saved)
                else:
                    log.warning("%s was truncated; reading it from its start", self.path)
                fh.seek(base)
                data = fh.read()
        except FileNotFoundError:
            if self._checkpoint() is not None:
                log.warning("no CDR file at %s (rotated away?): nothing to recover", self.path)
                return None
            # Asterisk writes it with the first call: every call it will hold is new.
            return [], Checkpoint(0, 0)
        # A record the old file ends with half-written is lost with it; whole ones are read.
        ended, _ = parse(earlier) if earlier else ([], 0)
        more, resume = parse(data, base)
        return ended + more, Checkpoint(stat.st_ino, resume)


def cdr_log_of(settings: Settings, server: str) -> CdrLog | None:
    """The CDR file of one AMI server (``server`` is its ami_servers name, empty for the only
    one), or None when cdr_path is not set."""
    files = server_files("cdr_path", settings.cdr_path, server, settings.data_dir, "cdr")
    return None if files is None else CdrLog(*files)

"""Queue calls that ended while nobody listened on AMI, recovered from Asterisk's queue_log.

The live state sees a call end only while connected, and CoreShowChannels after a reconnect
lists live channels only. Asterisk also appends every queue event to its queue_log file
(``epoch|callid|queue|agent|event|data...``); after each AMI login the recorder reads the lines
past a checkpoint and stores each finished queue call like a live one, once per Linkedid, so a
call the live state also saw is not doubled. A queued caller's callid is the uniqueid of the
caller's channel, which is the call's Linkedid for inbound calls (its first channel). Its
agent is the queue member's name; QueueStatus at login gives each member's interface.

The checkpoint (inode and offset, a JSON file in the data folder) moves past a call only once
its record is stored, and never past a call still in the queue. Without a checkpoint (the first
start) the file is only read for the calls under way: calls that ended before the product ran
are not imported. Calls that never reached a queue do not appear in queue_log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from callcenter.channels.telephony.events import CallEnded
from callcenter.channels.telephony.logfiles import Checkpoint, CheckpointedFile, server_files
from callcenter.config import Settings
from callcenter.models import CallOutcome

log = logging.getLogger(__name__)

ANSWERED_ENDS = {"COMPLETEAGENT", "COMPLETECALLER", "BLINDTRANSFER", "ATTENDEDTRANSFER"}
UNANSWERED_ENDS = {
    "ABANDON": CallOutcome.ABANDONED,
    "EXITWITHTIMEOUT": CallOutcome.TIMEOUT,
    "EXITEMPTY": CallOutcome.TIMEOUT,
    "EXITWITHKEY": CallOutcome.TIMEOUT,
}


@dataclass
class _Queued:
    offset: int
    """Where the call's ENTERQUEUE line starts: the checkpoint cannot pass it until it ends."""
    queue: str
    caller: str
    entered: datetime
    agent: str | None = None
    answered: datetime | None = None
    wait: int = 0


def _at(epoch: str) -> datetime:
    return datetime.fromtimestamp(int(epoch), UTC)


def _int(value: str) -> int:
    return int(value) if value.isdigit() else 0


def parse(
    data: bytes, base: int = 0, members: Mapping[str, str] | None = None
) -> tuple[list[CallEnded], int]:
    """The calls that ended in ``data`` (queue_log lines from file offset ``base``), and the
    offset to read from next time: the start of the oldest call still queued, else the end
    of the last whole line. ``members`` maps a member name to its interface (PJSIP/1001)."""
    members = members or {}
    calls: dict[str, _Queued] = {}
    ended: list[CallEnded] = []
    offset = base
    for line in data.splitlines(keepends=True):
        start, offset = offset, offset + len(line)
        if not line.endswith(b"\n"):  # Asterisk is still writing it
            offset = start
            break
        fields = line.decode("utf-8", errors="replace").rstrip("\r\n").split("|")
        if len(fields) < 5 or not fields[0].isdigit():
            continue
        epoch, callid, queue, agent, event, *extra = fields
        extra += [""] * (3 - len(extra))
        if event == "ENTERQUEUE":
            calls[callid] = _Queued(start, queue, extra[1], _at(epoch))
            continue
        call = calls.get(callid)
        if call is None:  # entered before the checkpoint (the first start) or another day
            continue
        if event == "CONNECT":
            call.agent = members.get(agent, agent)
            call.answered, call.wait = _at(epoch), _int(extra[0])
        elif event in ANSWERED_ENDS or event in UNANSWERED_ENDS:
            del calls[callid]
            ended.append(_ended(callid, call, event, _at(epoch)))
    resume = min((call.offset for call in calls.values()), default=offset)
    return ended, resume


def _ended(callid: str, call: _Queued, event: str, at: datetime) -> CallEnded:
    answered = call.answered is not None and event in ANSWERED_ENDS
    if answered:
        outcome, wait = CallOutcome.ANSWERED, call.wait
        talk = int((at - call.answered).total_seconds()) if call.answered else 0
    else:
        outcome = UNANSWERED_ENDS.get(event, CallOutcome.ABANDONED)
        wait = int((at - call.entered).total_seconds())
        talk = 0
    return CallEnded(
        linkedid=callid,
        queue=call.queue,
        caller_number=call.caller,
        caller_name="",
        agent_interface=call.agent if answered else None,
        wait_seconds=wait,
        talk_seconds=talk,
        outcome=outcome,
        started_at=call.entered,
        answered_at=call.answered if answered else None,
        ended_at=at,
    )


class QueueLog(CheckpointedFile):
    """One Asterisk's queue_log file and the checkpoint of what was read of it."""

    def read(
        self, members: Mapping[str, str] | None = None
    ) -> tuple[list[CallEnded], Checkpoint] | None:
        """The calls ended since the checkpoint and the checkpoint after them (to `save` once
        they are stored); None when Asterisk has written no queue_log yet."""
        try:
            with self.path.open("rb") as fh:
                inode, size = os.fstat(fh.fileno()).st_ino, os.fstat(fh.fileno()).st_size
                saved = self._checkpoint()
                first_start = saved is None
                base = 0
                if saved is not None and saved.inode == inode and saved.offset <= size:
                    base = saved.offset
                elif saved is not None:
                    log.warning("%s was rotated or truncated; reading it from its start", self.path)
                fh.seek(base)
                data = fh.read()
        except FileNotFoundError:
            log.warning("no queue_log at %s yet: nothing to recover", self.path)
            return None
        ended, resume = parse(data, base, members)
        return ([] if first_start else ended), Checkpoint(inode, resume)


def queue_log_of(settings: Settings, server: str) -> QueueLog | None:
    """The queue_log of one AMI server (``server`` is its ami_servers name, empty for the only
    one), or None when queue_log_path is not set."""
    files = server_files(
        "queue_log_path", settings.queue_log_path, server, settings.data_dir, "queue_log"
    )
    return None if files is None else QueueLog(*files)

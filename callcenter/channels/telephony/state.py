"""Live state of queues, agents and calls, kept from AMI events.

Pure: no I/O and no clock. `apply(event, at)` takes one AMI event (a dict of headers) and the
time it arrived, updates the state and returns the domain events it caused (events.py), which
the caller publishes. After every (re)connect the caller runs `resync_begin()` and applies the
responses of QueueStatus and CoreShowChannels (their *Complete events included), which rebuilds
members, waiting callers and calls from Asterisk's truth and finalises calls that ended while
events were lost. `tick(now)` ends wrap-up times; the snapshot methods feed the dashboard.

Calls are keyed by the caller channel's Uniqueid (what QueueEntry and Hangup carry); their
Linkedid is the durable key of the call record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from callcenter.channels.telephony.events import (
    AgentRinging,
    AgentState,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallerAbandoned,
    CallerJoined,
    QueueChanged,
)
from callcenter.models import CallOutcome

log = logging.getLogger(__name__)

Headers = Mapping[str, str]
Out = list[object]

# Asterisk device states (QueueMemberStatus Status): 0 unknown, 1 not in use, 2 in use,
# 3 busy, 4 invalid, 5 unavailable, 6 ringing, 7 ringing while in use, 8 on hold.
_DEVICE_GONE = frozenset({4, 5})
_DEVICE_BUSY = frozenset({2, 3, 7, 8})
_DEVICE_RINGING = 6

# Phases of a call, by the caller channel.
PRE = 0  # seen entering from the trunk, not queued yet
QUEUED = 1
LEFT = 2  # left the queue unanswered (timeout, empty queue) or just before AgentConnect
ABANDONED = 3
CONNECTED = 4
COMPLETED = 5  # the agent part is over (AgentComplete); the caller may still be in the dialplan
VANISHED = 6  # left the queue during an AMI outage; the resync of channels decides

_OUTCOME = {
    PRE: CallOutcome.MISSED,
    QUEUED: CallOutcome.ABANDONED,
    LEFT: CallOutcome.TIMEOUT,
    ABANDONED: CallOutcome.ABANDONED,
    CONNECTED: CallOutcome.ANSWERED,
    COMPLETED: CallOutcome.ANSWERED,
    # Hung up during the outage, fate unknown: counted as abandoned (the caller did not wait
    # for us while we were blind), never as answered without an agent seen.
    VANISHED: CallOutcome.ABANDONED,
}


@dataclass(frozen=True)
class QueueSettings:
    """Per-queue figures Asterisk does not report over AMI (or that we set ourselves)."""

    service_level_seconds: int = 20
    abandoned_in_service_level: bool = False
    wrapup_seconds: int = 0


@dataclass(frozen=True)
class WaitingCaller:
    linkedid: str
    caller_number: str
    caller_name: str
    position: int
    waiting_since: datetime
    wait_seconds: int


@dataclass(frozen=True)
class QueueSnapshot:
    name: str
    callers: tuple[WaitingCaller, ...]
    longest_wait_seconds: int
    answered_today: int
    abandoned_today: int
    timeout_today: int
    answered_within_service_level_today: int
    service_level_seconds: int
    abandoned_in_service_level: bool
    service_level: float | None
    """Percent answered within the threshold, of answered (and abandoned, if so set) calls."""
    average_wait_seconds: float | None
    """Of today's answered calls."""
    average_talk_seconds: float | None
    agents_logged_in: int
    agents_available: int


@dataclass(frozen=True)
class AgentSnapshot:
    interface: str
    name: str
    state: AgentState
    reason: str
    since: datetime
    seconds_in_state: int
    queues: tuple[str, ...]
    paused_queues: tuple[str, ...]
    caller_number: str
    caller_name: str
    call_queue: str | None
    linkedid: str | None
    calls_today: int


def _int(value: str | None, default: int = 0) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        log.warning("AMI header is not a number: %r", value)
        return default


def _seconds(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds()))


def _duration(value: str | None) -> int:
    """CoreShowChannel's Duration, "HH:MM:SS", in seconds."""
    try:
        hours, minutes, seconds = (int(part) for part in (value or "").split(":"))
    except ValueError:
        return 0
    return hours * 3600 + minutes * 60 + seconds


def _queue_of(channel: Headers) -> str | None:
    """The queue a CoreShowChannel is in: Application Queue, ApplicationData "support,c,..."."""
    if channel.get("Application") != "Queue":
        return None
    return channel.get("ApplicationData", "").split(",")[0] or None


def _interface_of(channel: str) -> str:
    """PJSIP/1001-00000003 -> PJSIP/1001."""
    return channel.rpartition("-")[0] or channel


@dataclass(slots=True, eq=False)
class _Call:
    uniqueid: str
    linkedid: str
    caller_number: str
    caller_name: str
    started_at: datetime
    gen: int
    queue: str | None = None
    phase: int = PRE
    position: int = 0
    joined_at: datetime = field(init=False)
    left_at: datetime = field(init=False)
    waited: int = 0
    hold: int = 0
    answered_at: datetime | None = None
    agent: _Agent | None = None
    talk_seconds: int = 0
    ringing: list[_Agent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.joined_at = self.left_at = self.started_at


def _new_call(uid: str, linkedid: str, h: Headers, at: datetime, gen: int) -> _Call:
    return _Call(uid, linkedid or uid, h.get("CallerIDNum", ""), h.get("CallerIDName", ""), at, gen)


@dataclass(slots=True, eq=False)
class _Member:
    paused_at: datetime
    gen: int
    paused: bool = False
    reason: str = ""
    wrapup: int = 0
    in_call: bool = False


@dataclass(slots=True, eq=False)
class _Daily:
    day: date | None = None
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    timeout: int = 0
    wait_total: int = 0
    talk_total: int = 0
    talked: int = 0
    handled: int = 0


@dataclass(slots=True, eq=False)
class _Agent:
    interface: str
    name: str
    since: datetime
    members: dict[str, _Member] = field(default_factory=dict)
    device: int = 0
    pre_ring_device: int = 0
    ring: _Call | None = None
    call: _Call | None = None
    wrapup_until: datetime | None = None
    state: AgentState = AgentState.OFFLINE
    reason: str = ""
    daily: _Daily = field(default_factory=_Daily)


@dataclass(slots=True, eq=False)
class _Queue:
    name: str
    settings: QueueSettings
    gen: int
    sl_seconds: int = field(init=False)
    waiting: dict[str, _Call] = field(default_factory=dict)
    members: dict[str, _Agent] = field(default_factory=dict)
    daily: _Daily = field(default_factory=_Daily)

    def __post_init__(self) -> None:
        self.sl_seconds = self.settings.service_level_seconds


@dataclass(slots=True, eq=False)
class _Resync:
    entries: dict[str, Headers] = field(default_factory=dict)
    channels: dict[str, Headers] = field(default_factory=dict)
    queues_done: bool = False
    channels_done: bool = False


class LiveState:
    """Queues, agents and calls as AMI describes them; see the module docstring."""

    def __init__(
        self,
        tz: tzinfo = UTC,
        settings: Mapping[str, QueueSettings] | None = None,
        inbound_contexts: frozenset[str] = frozenset({"from-trunk"}),
    ) -> None:
        """`settings` per queue name (from the queues table); `inbound_contexts` are where
        customer calls enter, so a call that hangs up before reaching a queue is recorded
        as missed."""
        self._tz = tz
        self._settings = dict(settings or {})
        self.wrapup_seconds = 0
        """Wrap-up of queues whose members and settings name none (the server's own)."""
        self._inbound = inbound_contexts
        self._calls: dict[str, _Call] = {}
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, _Agent] = {}
        self._wrapping: set[_Agent] = set()
        self._gen = 0
        self._resync: _Resync | None = None
        self._day_start = self._day_end = datetime.min.replace(tzinfo=UTC)
        self._day = date.min
        member = self._member
        self._handlers: dict[str, Callable[[Headers, datetime, Out], None]] = {
            "Newchannel": self._newchannel,
            "QueueCallerJoin": self._join,
            "QueueCallerLeave": self._leave,
            "QueueCallerAbandon": self._abandon,
            "AgentCalled": self._agent_called,
            "DialBegin": self._dial_begin,
            "DialEnd": self._dial_end,
            "AgentRingNoAnswer": self._ring_no_answer,
            "AgentConnect": self._connect,
            "AgentComplete": self._complete,
            "Hangup": self._hangup,
            "QueueMemberAdded": member,
            "QueueMemberStatus": member,
            "QueueMemberPause": member,
            "QueueMemberPenalty": member,
            "QueueMemberRinginuse": member,
            "QueueMemberRemoved": self._member_removed,
            "QueueParams": self._queue_params,
            "QueueMember": member,
            "QueueEntry": self._queue_entry,
            "QueueStatusComplete": self._queue_status_complete,
            "CoreShowChannel": self._channel,
            "CoreShowChannelsComplete": self._channels_complete,
        }

    # ---- entry points ---------------------------------------------------------------------

    @property
    def handled_events(self) -> frozenset[str]:
        """The AMI event names this state reads; the adapter need not decode any other."""
        return frozenset(self._handlers)

    def apply(self, event: Headers, at: datetime) -> list[object]:
        """Apply one AMI event received at `at`; return the domain events it caused."""
        handler = self._handlers.get(event.get("Event", ""))
        out: Out = []
        if handler is not None:
            handler(event, at, out)
        return out

    def configure_queue(self, name: str, settings: QueueSettings | None) -> None:
        """A queue's settings changed in the queues table (None: the queue was deleted); a
        queue already seen takes them for the calls that follow."""
        if settings is None:
            self._settings.pop(name, None)
            return
        self._settings[name] = settings
        queue = self._queues.get(name)
        if queue is not None:
            queue.settings = settings
            queue.sl_seconds = settings.service_level_seconds

    def resync_begin(self) -> None:
        """Start a resync: apply QueueStatus and CoreShowChannels responses next."""
        self._gen += 1
        self._resync = _Resync()

    def tick(self, now: datetime) -> list[object]:
        """End the wrap-up times that are over; call about once a second."""
        out: Out = []
        for agent in [a for a in self._wrapping if a.wrapup_until and a.wrapup_until <= now]:
            self._wrapping.discard(agent)
            until, agent.wrapup_until = agent.wrapup_until, None
            self._update(agent, until or now, out)
        return out

    @property
    def calls_in_progress(self) -> int:
        return len(self._calls)

    # ---- calls ----------------------------------------------------------------------------

    def _newchannel(self, h: Headers, at: datetime, out: Out) -> None:
        uid = h.get("Uniqueid", "")
        if h.get("Context") in self._inbound and uid == h.get("Linkedid") and uid:
            self._calls.setdefault(uid, _new_call(uid, uid, h, at, self._gen))

    def _join(self, h: Headers, at: datetime, out: Out) -> None:
        uid = h.get("Uniqueid", "")
        call = self._calls.get(uid)
        if call is None:
            call = self._calls[uid] = _new_call(uid, h.get("Linkedid", ""), h, at, self._gen)
        else:
            if call.phase == QUEUED:  # moved to another queue without a QueueCallerLeave
                self._unqueue(call, at, LEFT)
            self._close_stint(call)
            call.caller_number = h.get("CallerIDNum", call.caller_number)
            call.caller_name = h.get("CallerIDName", call.caller_name)
        queue = self._queue(h.get("Queue", ""))
        self._enqueue(queue, call, _int(h.get("Position"), len(queue.waiting) + 1), at)
        out.append(
            CallerJoined(
                queue=queue.name,
                linkedid=call.linkedid,
                uniqueid=uid,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                position=call.position,
                at=at,
            )
        )
        out.append(QueueChanged(queue.name))

    def _enqueue(self, queue: _Queue, call: _Call, position: int, joined_at: datetime) -> None:
        for other in queue.waiting.values():
            if other.position >= position:
                other.position += 1
        call.queue, call.phase, call.position = queue.name, QUEUED, position
        call.joined_at = joined_at
        call.gen = self._gen
        queue.waiting[call.uniqueid] = call

    def _unqueue(self, call: _Call, at: datetime, phase: int) -> _Queue:
        queue = self._queues[call.queue or ""]
        if queue.waiting.pop(call.uniqueid, None) is not None:
            for other in queue.waiting.values():
                if other.position > call.position:
                    other.position -= 1
        call.phase, call.left_at = phase, at
        return queue

    def _close_stint(self, call: _Call) -> None:
        """A stint that left its queue unanswered ends as a timeout of that queue."""
        if call.phase == LEFT and call.queue in self._queues:
            call.waited += _seconds(call.left_at - call.joined_at)
            self._counters(self._queues[call.queue], call.left_at).timeout += 1

    def _leave(self, h: Headers, at: datetime, out: Out) -> None:
        call = self._calls.get(h.get("Uniqueid", ""))
        # After an abandon Asterisk still sends QueueCallerLeave: nothing more to do then.
        if call is not None and call.phase == QUEUED:
            queue = self._unqueue(call, at, LEFT)
            out.append(QueueChanged(queue.name))

    def _abandon(self, h: Headers, at: datetime, out: Out) -> None:
        call = self._calls.get(h.get("Uniqueid", ""))
        if call is None or call.phase != QUEUED:
            return
        hold = _int(h.get("HoldTime"), _seconds(at - call.joined_at))
        queue = self._unqueue(call, at, ABANDONED)
        call.waited += hold
        self._counters(queue, at).abandoned += 1
        self._stop_ringing(call, at, out)
        out.append(
            CallerAbandoned(
                linkedid=call.linkedid,
                queue=queue.name,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                position=_int(h.get("Position"), call.position),
                wait_seconds=hold,
                at=at,
            )
        )
        out.append(QueueChanged(queue.name))

    def _tracked(self, h: Headers, at: datetime) -> _Call:
        """The call of a queue event; one we missed the start of is taken up from here."""
        uid = h.get("Uniqueid", "")
        call = self._calls.get(uid)
        if call is None:
            call = self._calls[uid] = _new_call(uid, h.get("Linkedid", ""), h, at, self._gen)
            queue = self._queue(h.get("Queue", ""))
            self._enqueue(queue, call, len(queue.waiting) + 1, at)
        return call

    def _agent_called(self, h: Headers, at: datetime, out: Out) -> None:
        call = self._tracked(h, at)
        agent = self._agent(h.get("Interface", ""), h.get("MemberName", ""), at)
        self._ring(call, agent, h.get("Queue", ""), at, out)

    def _ring(self, call: _Call, agent: _Agent, queue: str, at: datetime, out: Out) -> None:
        """The agent's phone rings with this caller: the screen-pop trigger."""
        if agent.ring is None:
            agent.pre_ring_device = agent.device
        agent.ring = call
        call.ringing.append(agent)
        out.append(
            AgentRinging(
                interface=agent.interface,
                agent_name=agent.name,
                queue=queue,
                linkedid=call.linkedid,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                at=at,
            )
        )
        self._update(agent, at, out)

    def _direct_dial(self, h: Headers) -> tuple[_Call, str] | None:
        """(call, agent interface) when a caller not yet queued is dialled straight to an
        agent's phone (the dialplan tries the customer's preferred agent first); else None.
        Queue() dials its members too, but then the caller is already queued."""
        call = self._calls.get(h.get("Uniqueid", ""))
        dest = h.get("DestChannel", "")
        if call is None or call.phase != PRE or not dest.startswith("PJSIP/"):
            return None
        return call, dest.rsplit("-", 1)[0]

    def _dial_begin(self, h: Headers, at: datetime, out: Out) -> None:
        found = self._direct_dial(h)
        if found is None:
            return
        call, interface = found
        call.caller_name = h.get("CallerIDName") or call.caller_name
        self._ring(call, self._agent(interface, "", at), "", at, out)

    def _dial_end(self, h: Headers, at: datetime, out: Out) -> None:
        found = self._direct_dial(h)
        if found is None:
            return
        call, interface = found
        agent = self._agent(interface, "", at)
        if h.get("DialStatus") == "ANSWER":
            self._answered(call, None, agent, _seconds(at - call.started_at), at, out)
            return
        if agent in call.ringing:
            call.ringing.remove(agent)
        if agent.ring is call:
            self._ring_over(agent, at, out)

    def _ring_no_answer(self, h: Headers, at: datetime, out: Out) -> None:
        agent = self._agents.get(h.get("Interface", ""))
        if agent is not None and agent.ring is not None:
            if agent in agent.ring.ringing:
                agent.ring.ringing.remove(agent)
            self._ring_over(agent, at, out)

    def _ring_over(self, agent: _Agent, at: datetime, out: Out) -> None:
        """The phone stopped ringing unanswered.

        A ringing PJSIP phone may report BUSY; that status is stale once the ringing is over
        and no new QueueMemberStatus may follow, so the status from before the ring stands.
        """
        agent.ring = None
        agent.device = agent.pre_ring_device
        self._update(agent, at, out)

    def _stop_ringing(self, call: _Call, at: datetime, out: Out) -> None:
        for agent in call.ringing:
            if agent.ring is call:
                self._ring_over(agent, at, out)
        call.ringing.clear()

    def _connect(self, h: Headers, at: datetime, out: Out) -> None:
        call = self._tracked(h, at)
        agent = self._agent(h.get("Interface", ""), h.get("MemberName", ""), at)
        queue = self._queue(h.get("Queue", "") or call.queue or "")
        hold = _int(h.get("HoldTime"), _seconds(at - call.joined_at))
        if call.phase == QUEUED:
            self._unqueue(call, at, CONNECTED)
        self._answered(call, queue, agent, hold, at, out)

    def _answered(
        self, call: _Call, queue: _Queue | None, agent: _Agent, hold: int, at: datetime, out: Out
    ) -> None:
        """The agent took the call; ``queue`` is None for a direct dial, which no queue counts."""
        call.phase, call.answered_at, call.agent = CONNECTED, at, agent
        call.waited += hold
        call.hold = hold
        if queue is not None:
            call.queue = queue.name
            counters = self._counters(queue, at)
            counters.answered += 1
            counters.wait_total += hold
            counters.answered_in_sl += hold <= queue.sl_seconds
        agent.call, agent.ring, agent.wrapup_until = call, None, None
        self._stop_ringing(call, at, out)
        self._wrapping.discard(agent)
        self._agent_counters(agent, at).handled += 1
        out.append(
            CallAnswered(
                linkedid=call.linkedid,
                queue=queue.name if queue else "",
                interface=agent.interface,
                agent_name=agent.name,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                wait_seconds=hold,
                at=at,
            )
        )
        if queue is not None:
            out.append(QueueChanged(queue.name))
        self._update(agent, at, out)

    def _complete(self, h: Headers, at: datetime, out: Out) -> None:
        call = self._calls.get(h.get("Uniqueid", ""))
        agent = self._agent(h.get("Interface", ""), h.get("MemberName", ""), at)
        queue = self._queue(h.get("Queue", ""))
        if call is not None and call.phase == CONNECTED:
            call.phase, call.talk_seconds = COMPLETED, _int(h.get("TalkTime"))
            self._talked(queue, call.talk_seconds, at)
            hold = _int(h.get("HoldTime"), call.hold)
            if hold != call.hold:  # answered while we were not listening: Asterisk knows
                self._correct_hold(call, queue, hold)
        self._agent_done(agent, queue.name, at, out)

    def _correct_hold(self, call: _Call, queue: _Queue, hold: int) -> None:
        answered_at = call.joined_at + timedelta(seconds=hold)
        counters = self._counters(queue, call.answered_at or answered_at)
        counters.wait_total += hold - call.hold
        counters.answered_in_sl += (hold <= queue.sl_seconds) - (call.hold <= queue.sl_seconds)
        call.waited += hold - call.hold
        call.hold, call.answered_at = hold, answered_at

    def _talked(self, queue: _Queue, talk: int, at: datetime) -> None:
        counters = self._counters(queue, at)
        counters.talk_total += talk
        counters.talked += 1

    def _agent_done(self, agent: _Agent, queue: str, at: datetime, out: Out) -> None:
        """The agent's part of a call is over: wrap-up starts (if the queue has one)."""
        agent.call = None
        for member in agent.members.values():
            member.in_call = False
        member = agent.members.get(queue)
        settings = self._queues[queue].settings if queue in self._queues else QueueSettings()
        wrapup = (member.wrapup if member else 0) or settings.wrapup_seconds or self.wrapup_seconds
        if wrapup > 0:
            agent.wrapup_until = at + timedelta(seconds=wrapup)
            self._wrapping.add(agent)
        self._update(agent, at, out)

    def _hangup(self, h: Headers, at: datetime, out: Out) -> None:
        call = self._calls.get(h.get("Uniqueid", ""))
        if call is not None:
            self._finish(call, at, out)

    def _finish(self, call: _Call, at: datetime, out: Out) -> None:
        """The caller is gone: close the call and publish its record."""
        phase = call.phase
        if phase == QUEUED:
            queue = self._unqueue(call, at, QUEUED)
            call.waited += _seconds(at - call.joined_at)
            self._counters(queue, at).abandoned += 1
            out.append(QueueChanged(queue.name))
        elif phase == VANISHED:
            call.waited += _seconds(call.left_at - call.joined_at)
            self._counters(self._queue(call.queue or ""), at).abandoned += 1
        elif phase == LEFT:
            self._close_stint(call)
        elif phase == CONNECTED and call.answered_at is not None:
            # AgentComplete was lost (outage): the talk lasted until now at most.
            call.talk_seconds = _seconds(at - call.answered_at)
            if call.queue in self._queues:
                self._talked(self._queues[call.queue], call.talk_seconds, at)
            if call.agent is not None and call.agent.call is call:
                self._agent_done(call.agent, call.queue or "", at, out)
        self._stop_ringing(call, at, out)
        del self._calls[call.uniqueid]
        out.append(
            CallEnded(
                linkedid=call.linkedid,
                queue=call.queue,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                agent_interface=call.agent.interface if call.agent else None,
                wait_seconds=call.waited,
                talk_seconds=call.talk_seconds,
                outcome=_OUTCOME[phase],
                started_at=call.started_at,
                answered_at=call.answered_at,
                ended_at=at,
            )
        )

    # ---- agents ---------------------------------------------------------------------------

    def _agent(self, interface: str, name: str, at: datetime) -> _Agent:
        agent = self._agents.get(interface)
        if agent is None:
            agent = self._agents[interface] = _Agent(interface, name or interface, at)
        elif name:
            agent.name = name
        return agent

    def _member(self, h: Headers, at: datetime, out: Out) -> None:
        interface = h.get("Interface") or h.get("Location", "")
        queue = self._queue(h.get("Queue", ""))
        agent = self._agent(interface, h.get("MemberName") or h.get("Name", ""), at)
        member = agent.members.get(queue.name)
        changed = member is None
        if member is None:
            member = agent.members[queue.name] = _Member(at, self._gen)
            queue.members[interface] = agent
        paused = h.get("Paused") == "1"
        reason = h.get("PausedReason", "")
        if paused != member.paused or reason != member.reason:
            changed = True
            if paused and not member.paused:
                member.paused_at = at
        member.paused, member.reason = paused, reason
        member.wrapup = _int(h.get("Wrapuptime"))
        member.in_call = h.get("InCall") == "1"
        member.gen = self._gen
        agent.device = _int(h.get("Status"), agent.device)
        if changed:
            out.append(QueueChanged(queue.name))
        self._update(agent, at, out)

    def _member_removed(self, h: Headers, at: datetime, out: Out) -> None:
        agent = self._agents.get(h.get("Interface", ""))
        name = h.get("Queue", "")
        if agent is not None and agent.members.pop(name, None) is not None:
            self._queues[name].members.pop(agent.interface, None)
            out.append(QueueChanged(name))
            self._update(agent, at, out)

    def _derive(self, agent: _Agent, at: datetime) -> tuple[AgentState, str]:
        if not agent.members or agent.device in _DEVICE_GONE:
            return AgentState.OFFLINE, ""
        if agent.call is not None:
            return AgentState.ON_CALL, ""
        # A ringing phone may report BUSY (seen with PJSIP), so AgentCalled wins over Status.
        if agent.ring is not None:
            return AgentState.RINGING, ""
        if agent.device in _DEVICE_BUSY or any(m.in_call for m in agent.members.values()):
            return AgentState.ON_CALL, ""
        if agent.device == _DEVICE_RINGING:
            return AgentState.RINGING, ""
        if agent.wrapup_until is not None and at < agent.wrapup_until:
            return AgentState.WRAPUP, ""
        members = agent.members.values()
        if all(m.paused for m in members):
            latest = max(members, key=lambda m: m.paused_at)
            return AgentState.PAUSED, latest.reason
        return AgentState.AVAILABLE, ""

    def _update(self, agent: _Agent, at: datetime, out: Out) -> None:
        state, reason = self._derive(agent, at)
        if state != agent.state or reason != agent.reason:
            agent.state, agent.reason, agent.since = state, reason, at
            out.append(AgentStateChanged(agent.interface, state, reason, at))

    # ---- resync ---------------------------------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue(
                name, self._settings.get(name) or QueueSettings(), self._gen
            )
        return queue

    def _queue_params(self, h: Headers, at: datetime, out: Out) -> None:
        queue = self._queue(h.get("Queue", ""))
        queue.gen = self._gen
        if queue.name not in self._settings:
            queue.sl_seconds = _int(h.get("ServiceLevel")) or queue.sl_seconds

    def _queue_entry(self, h: Headers, at: datetime, out: Out) -> None:
        if self._resync is not None:
            self._resync.entries[h.get("Uniqueid", "")] = h

    def _channel(self, h: Headers, at: datetime, out: Out) -> None:
        if self._resync is not None:
            self._resync.channels[h.get("Uniqueid", "")] = h

    def _queue_status_complete(self, h: Headers, at: datetime, out: Out) -> None:
        resync = self._resync
        if resync is None or resync.queues_done:
            return
        resync.queues_done = True
        self._reconcile_queues(resync.entries, at, out)
        if resync.channels_done:
            self._reconcile_calls(resync, at, out)

    def _channels_complete(self, h: Headers, at: datetime, out: Out) -> None:
        resync = self._resync
        if resync is None or resync.channels_done:
            return
        resync.channels_done = True
        if resync.queues_done:
            self._reconcile_calls(resync, at, out)

    def _reconcile_queues(self, entries: dict[str, Headers], at: datetime, out: Out) -> None:
        """Members and waiting callers as QueueStatus listed them (or joined since)."""
        gen = self._gen
        for queue in self._queues.values():
            for call in [c for c in queue.waiting.values() if c.gen < gen]:
                if call.uniqueid not in entries:
                    self._unqueue(call, at, VANISHED)
            for interface, agent in list(queue.members.items()):
                member = agent.members[queue.name]
                if member.gen < gen:
                    del agent.members[queue.name], queue.members[interface]
        for uid, h in entries.items():
            queue = self._queue(h.get("Queue", ""))
            position = _int(h.get("Position"), len(queue.waiting) + 1)
            call = self._calls.get(uid)
            if call is not None and call.queue == queue.name and call.phase == QUEUED:
                call.position, call.gen = position, gen
                continue
            joined = at - timedelta(seconds=_int(h.get("Wait")))
            if call is None:
                call = self._calls[uid] = _new_call(uid, uid, h, joined, gen)
            elif call.phase == QUEUED:
                self._unqueue(call, at, LEFT)
            self._enqueue(queue, call, position, joined)
            out.append(
                CallerJoined(
                    queue=queue.name,
                    linkedid=call.linkedid,
                    uniqueid=uid,
                    caller_number=call.caller_number,
                    caller_name=call.caller_name,
                    position=position,
                    at=joined,
                )
            )
        for name, queue in self._queues.items():
            queue.waiting = dict(sorted(queue.waiting.items(), key=lambda i: i[1].position))
            out.append(QueueChanged(name))
        # Agents are brought up to date in _reconcile_calls, which always follows: an agent
        # whose AgentConnect was lost would otherwise read as available until it runs.

    def _reconcile_calls(self, resync: _Resync, at: datetime, out: Out) -> None:
        """Finalise calls whose caller channel is gone; take up calls answered meanwhile."""
        channels = resync.channels
        bridged: dict[str, str] = {}  # BridgeId -> agent interface in it
        for h in channels.values():
            interface = _interface_of(h.get("Channel", ""))
            if h.get("BridgeId") and interface in self._agents:
                bridged[h["BridgeId"]] = interface
        for call in list(self._calls.values()):
            h = channels.get(call.uniqueid)
            if h is None:
                if call.gen < self._gen:  # not one that started while we were resyncing
                    self._finish(call, at, out)
                continue
            call.linkedid = h.get("Linkedid") or call.linkedid
            interface = bridged.get(h.get("BridgeId", ""))
            queue = call.queue or _queue_of(h)
            if call.phase in (PRE, VANISHED) and interface is not None and queue:
                # Queued (again) and answered while we were not listening.
                hold = _seconds(at - call.joined_at)
                self._answered(call, self._queue(queue), self._agents[interface], hold, at, out)
            elif call.phase == VANISHED:
                call.phase = LEFT
            elif call.phase == CONNECTED and interface is None and call.agent is not None:
                call.phase = COMPLETED
                call.talk_seconds = _seconds(at - (call.answered_at or at))
                self._agent_done(call.agent, call.queue or "", at, out)
        for uid, h in channels.items():
            interface = bridged.get(h.get("BridgeId", ""))
            queue = _queue_of(h)
            if uid in self._calls or queue is None or interface is None:
                continue
            # Came in and was answered while we were not listening: the wait is at most the
            # channel's age until AgentComplete tells.
            started = at - timedelta(seconds=_duration(h.get("Duration")))
            call = self._calls[uid] = _new_call(uid, h.get("Linkedid", ""), h, started, self._gen)
            hold = _seconds(at - started)
            self._answered(call, self._queue(queue), self._agents[interface], hold, at, out)
        for agent in self._agents.values():
            if agent.call is not None and agent.call.uniqueid not in self._calls:
                agent.call = None
            if agent.ring is not None and agent.ring.phase != QUEUED:
                agent.ring = None
            self._update(agent, at, out)
        in_use = {c.queue for c in self._calls.values()}
        for name, queue in list(self._queues.items()):
            if queue.gen < self._gen and not queue.members and name not in in_use:
                del self._queues[name]  # no longer configured in Asterisk
        self._resync = None

    # ---- figures --------------------------------------------------------------------------

    def _today(self, at: datetime) -> date:
        if not self._day_start <= at < self._day_end:
            self._day = at.astimezone(self._tz).date()
            self._day_start = datetime.combine(self._day, time(), self._tz)
            self._day_end = datetime.combine(self._day + timedelta(days=1), time(), self._tz)
        return self._day

    def _counters(self, queue: _Queue, at: datetime) -> _Daily:
        day = self._today(at)
        if queue.daily.day != day:
            queue.daily = _Daily(day)
        return queue.daily

    def _agent_counters(self, agent: _Agent, at: datetime) -> _Daily:
        day = self._today(at)
        if agent.daily.day != day:
            agent.daily = _Daily(day)
        return agent.daily

    def queue_snapshot(self, name: str, now: datetime) -> QueueSnapshot:
        """Figures of one queue for the supervisor dashboard; KeyError for an unknown queue."""
        queue = self._queues[name]
        callers = tuple(
            WaitingCaller(
                linkedid=c.linkedid,
                caller_number=c.caller_number,
                caller_name=c.caller_name,
                position=c.position,
                waiting_since=c.joined_at,
                wait_seconds=_seconds(now - c.joined_at),
            )
            for c in sorted(queue.waiting.values(), key=lambda c: c.position)
        )
        daily = self._counters(queue, now)
        denominator = daily.answered + (
            daily.abandoned if queue.settings.abandoned_in_service_level else 0
        )
        logged_in = [a for a in queue.members.values() if a.device not in _DEVICE_GONE]
        # As QueueSummary counts them: an agent in wrap-up is available (not in use, not paused).
        available = [
            a
            for a in logged_in
            if self._derive(a, now)[0] in (AgentState.AVAILABLE, AgentState.WRAPUP)
            and not a.members[name].paused
        ]
        return QueueSnapshot(
            name=name,
            callers=callers,
            longest_wait_seconds=max((c.wait_seconds for c in callers), default=0),
            answered_today=daily.answered,
            abandoned_today=daily.abandoned,
            timeout_today=daily.timeout,
            answered_within_service_level_today=daily.answered_in_sl,
            service_level_seconds=queue.sl_seconds,
            abandoned_in_service_level=queue.settings.abandoned_in_service_level,
            service_level=100 * daily.answered_in_sl / denominator if denominator else None,
            average_wait_seconds=daily.wait_total / daily.answered if daily.answered else None,
            average_talk_seconds=daily.talk_total / daily.talked if daily.talked else None,
            agents_logged_in=len(logged_in),
            agents_available=len(available),
        )

    def queue_snapshots(self, now: datetime) -> list[QueueSnapshot]:
        return [self.queue_snapshot(name, now) for name in sorted(self._queues)]

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]:
        """Every agent known from queue membership or calls, by interface."""
        snapshots = []
        for interface in sorted(self._agents):
            agent = self._agents[interface]
            state, reason = self._derive(agent, now)
            since = agent.since
            if (state, reason) != (agent.state, agent.reason):  # a wrap-up over without tick
                since = agent.wrapup_until or now
            call = agent.call or agent.ring
            snapshots.append(
                AgentSnapshot(
                    interface=interface,
                    name=agent.name,
                    state=state,
                    reason=reason,
                    since=since,
                    seconds_in_state=_seconds(now - since),
                    queues=tuple(sorted(agent.members)),
                    paused_queues=tuple(sorted(q for q, m in agent.members.items() if m.paused)),
                    caller_number=call.caller_number if call else "",
                    caller_name=call.caller_name if call else "",
                    call_queue=call.queue if call else None,
                    linkedid=call.linkedid if call else None,
                    calls_today=self._agent_counters(agent, now).handled,
                )
            )
        return snapshots

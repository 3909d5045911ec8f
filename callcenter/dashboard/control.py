"""A supervisor's control of agents through AMI: pause and resume, log into and out of a
queue, and listen, whisper or barge into an agent's call (ChanSpy).

The web layer sees only the `TelephonyControl` protocol; `AmiControl` implements it on any
client with `send_action` (the telephony service's AMI client). Input is checked here, before
anything reaches Asterisk.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from callcenter.channels.telephony.events import AgentState
from callcenter.channels.telephony.state import AgentSnapshot
from callcenter.models import utcnow

log = logging.getLogger(__name__)

_ENDPOINT = re.compile(r"PJSIP/[A-Za-z0-9_-]{1,40}")
_INTERFACE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.+@-]{1,80}")
_QUEUE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REASON = 80


class ControlError(Exception):
    """Asterisk refused the action or could not be reached; the message says why."""


class SpyMode(enum.StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


# ChanSpy options: q quiet (no beep, no channel name read out), E end with the spied channel;
# w the supervisor talks to the agent only, B to both sides of the call.
SPY_OPTIONS = {SpyMode.LISTEN: "qE", SpyMode.WHISPER: "qwE", SpyMode.BARGE: "qBE"}
SPY_RING_SECONDS = 30


def check_endpoint(value: str) -> str:
    """A phone as users.py stores it (PJSIP/<name>): the only form put into an Originate."""
    if not _ENDPOINT.fullmatch(value):
        raise ValueError(f"not a phone endpoint: {value!r}")
    return value


def spy_action(supervisor: str, agent: str, mode: SpyMode) -> dict[str, str]:
    """AMI Originate: ring the supervisor's phone; answered, it runs ChanSpy on the agent's
    channels (``PJSIP/1001-…``). Only validated endpoint names reach Asterisk."""
    supervisor, agent = check_endpoint(supervisor), check_endpoint(agent)
    if supervisor == agent:
        raise ValueError("a phone cannot spy on itself")
    extension = agent.partition("/")[2]
    return {
        "Action": "Originate",
        "Channel": supervisor,
        "Application": "ChanSpy",
        "Data": f"{agent}-,{SPY_OPTIONS[mode]}",
        "CallerID": f'"{mode.value} {extension}" <{extension}>',
        "Timeout": str(SPY_RING_SECONDS * 1000),
        "Async": "true",
    }


def check_interface(value: str) -> str:
    if not _INTERFACE.fullmatch(value):
        raise ValueError(f"not an agent interface: {value!r}")
    return value


def check_queue(value: str) -> str:
    if not _QUEUE.fullmatch(value):
        raise ValueError(f"not a queue name: {value!r}")
    return value


def check_reason(value: str) -> str:
    reason = value.strip()
    if len(reason) > MAX_REASON or _CONTROL.search(reason):
        raise ValueError(f"a pause reason is one line of at most {MAX_REASON} characters")
    return reason


class TelephonyControl(Protocol):
    async def pause(self, interface: str, reason: str, queue: str | None = None) -> None:
        """Pause the agent in `queue`, or in every queue when it is None."""

    async def resume(self, interface: str, queue: str | None = None) -> None: ...

    async def log_in(self, interface: str, queue: str, name: str = "") -> None:
        """Add the agent to the queue as a dynamic member."""

    async def log_out(self, interface: str, queue: str) -> None: ...

    async def spy(self, supervisor: str, agent: str, mode: SpyMode) -> None:
        """Ring the supervisor's phone into the agent's call (listen, whisper or barge)."""


class ActionSender(Protocol):
    async def send_action(
        self, action: Mapping[str, str], *, timeout: float = ..., as_list: bool | None = ...
    ) -> Any:
        """Returns a response with ``ok`` and ``headers`` (ami.AmiResponse)."""


class AmiControl:
    def __init__(self, ami: ActionSender, timeout: float = 5.0) -> None:
        self._ami = ami
        self._timeout = timeout

    async def _send(self, action: dict[str, str]) -> None:
        try:
            # One response each: panoramisk would otherwise wait for a list after "Added
            # interface to queue" (QueueAdd) or "Originate successfully queued" (until answered).
            response = await self._ami.send_action(action, timeout=self._timeout, as_list=False)
        except (ConnectionError, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
            raise ControlError(f"Asterisk is not reachable: {why}") from exc
        if not response.ok:
            message = response.headers.get("Message") or "refused"
            log.info("AMI %s refused: %s", action["Action"], message)
            raise ControlError(message)

    async def _pause(self, interface: str, paused: bool, reason: str, queue: str | None) -> None:
        action = {"Action": "QueuePause", "Interface": check_interface(interface)}
        action["Paused"] = "true" if paused else "false"
        if queue is not None:
            action["Queue"] = check_queue(queue)
        if reason:
            action["Reason"] = reason
        await self._send(action)

    async def pause(self, interface: str, reason: str, queue: str | None = None) -> None:
        await self._pause(interface, True, check_reason(reason), queue)

    async def resume(self, interface: str, queue: str | None = None) -> None:
        await self._pause(interface, False, "", queue)

    async def log_in(self, interface: str, queue: str, name: str = "") -> None:
        action = {
            "Action": "QueueAdd",
            "Queue": check_queue(queue),
            "Interface": check_interface(interface),
        }
        if name:
            action["MemberName"] = check_reason(name)
        await self._send(action)

    async def log_out(self, interface: str, queue: str) -> None:
        queue, interface = check_queue(queue), check_interface(interface)
        await self._send({"Action": "QueueRemove", "Queue": queue, "Interface": interface})

    async def spy(self, supervisor: str, agent: str, mode: SpyMode) -> None:
        await self._send(spy_action(supervisor, agent, mode))


class AgentFigures(Protocol):
    """One server's live state (state.LiveState): where its agents are."""

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]: ...


class RoutedControl:
    """Several Asterisk servers: each action goes to the server that holds the agent's
    endpoint, or the queue named ``server/queue`` as the side-by-side wallboard names it (queue
    membership and ChanSpy are local to one Asterisk)."""

    def __init__(
        self, controls: Mapping[str, TelephonyControl], states: Mapping[str, AgentFigures]
    ) -> None:
        self._controls = controls
        self._states = states

    def _holding(self, interface: str, *, on_call: bool = False) -> str:
        now = utcnow()
        for server, state in self._states.items():
            for agent in state.agent_snapshots(now):
                if agent.interface == interface and (
                    not on_call or agent.state is AgentState.ON_CALL
                ):
                    return server
        raise ValueError(f"no server holds the agent {interface!r}")

    def _route(self, interface: str, queue: str | None) -> tuple[TelephonyControl, str | None]:
        if queue is None:
            return self._controls[self._holding(interface)], None
        server, slash, name = queue.partition("/")
        if not slash:
            return self._controls[self._holding(interface)], queue
        if server not in self._controls:
            raise ValueError(f"no such server: {server!r}")
        return self._controls[server], name

    async def pause(self, interface: str, reason: str, queue: str | None = None) -> None:
        control, queue = self._route(interface, queue)
        await control.pause(interface, reason, queue)

    async def resume(self, interface: str, queue: str | None = None) -> None:
        control, queue = self._route(interface, queue)
        await control.resume(interface, queue)

    async def log_in(self, interface: str, queue: str, name: str = "") -> None:
        control, name_in_server = self._route(interface, queue)
        await control.log_in(interface, name_in_server or queue, name)

    async def log_out(self, interface: str, queue: str) -> None:
        control, name_in_server = self._route(interface, queue)
        await control.log_out(interface, name_in_server or queue)

    async def spy(self, supervisor: str, agent: str, mode: SpyMode) -> None:
        """Originated on the agent's server: the supervisor's phone must be registered there."""
        control = self._controls[self._holding(agent, on_call=True)]
        await control.spy(supervisor, agent, mode)

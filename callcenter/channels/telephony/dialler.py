"""The callback dialler: due callbacks placed through Asterisk to the next free agent.

Each round it looks at the live state for agents who are available in a queue, claims for
each the oldest due callback of their queues (``automation.callbacks.claim_callback``: row
locks keep a second dialler, in this process or another, off the same row) and places it
the way click-to-call does (the ARI app rings the agent first, then the customer, and bridges
them), with a screen-pop of the customer's card on the agent's screen while the phone rings.
The outcome goes back on the row: done, tried again later, or failed after the limit.

With several Asterisk servers (``ami_servers``) it reads the agents of every server that has
an ARI application (``ari_urls``; else only ``ari_server``'s) and each call is placed by the
application of the agent's own server (``dialled_by``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import (
    CUSTOMER_SIDE,
    CallbackChanged,
    CallbackPolicy,
    DialOutcome,
    PlacedCall,
    claim_callback,
    due_queues,
    finish_attempt,
)
from callcenter.bus import Bus
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.channels.telephony.clicktocall import (
    ClickToCallProgress,
    ClickToCallRefused,
    ClickToCallRequested,
    ClickToCallTimings,
    State,
    dial_targets,
)
from callcenter.channels.telephony.events import AgentRinging, AgentState
from callcenter.channels.telephony.state import AgentSnapshot
from callcenter.config import ConfigError, Settings
from callcenter.db import unit_of_work
from callcenter.models import Customer, utcnow

log = logging.getLogger(__name__)

CALLBACK_QUEUE = "callback"
"""The queue name on the screen-pop when the callback names none."""
START_SECONDS = 30.0
"""How long the ARI application may take to report that the agent's phone rings."""
STOP_SECONDS = 10.0
NOBODY_ANSWERED = "nobody answered in time"
"""ClickToCall's reason when its ring times ran out."""
_NO_ANSWER_CAUSES = frozenset(
    {"no answer", "no user responding", "user alerting, no answer", "normal clearing",
     "unknown", "left"}
)  # fmt: skip
"""Asterisk hangup causes (cause_txt) of a customer's phone that rang and was not answered."""
_DIAL = re.compile(r"[A-Za-z][A-Za-z0-9_]*/[^\s{}]*\{number\}[^\s{}]*")


class Agents(Protocol):
    """What the dialler reads of the live state (state.LiveState)."""

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]: ...


@dataclass(frozen=True)
class _Job:
    callback_id: int
    phone: str
    queue: str
    customer_name: str
    agent: AgentSnapshot


def free_queues(agent: AgentSnapshot) -> frozenset[str]:
    """The queues an available agent takes calls from now (unpaused ones)."""
    if agent.state is not AgentState.AVAILABLE:
        return frozenset()
    return frozenset(agent.queues) - frozenset(agent.paused_queues)


def _failure(reason: str, agent_rang: bool, customer_rung: bool) -> DialOutcome:
    """Whose failure it was: not placed or the agent's phone (try again soon: the customer
    never knew), or the customer's side, the trunk included (an attempt, so a number that
    cannot be reached ends as failed): busy, no answer, or failed (the customer's leg could
    not be placed, or Asterisk's hangup cause says the number cannot be reached)."""
    agent_side = (
        not agent_rang
        or reason.startswith("agent")
        or (not customer_rung and reason == NOBODY_ANSWERED)
    )
    if agent_side:
        return DialOutcome.AGENT_MISSED
    cause = reason.removeprefix("customer:").strip().lower()
    if "busy" in cause:
        return DialOutcome.BUSY
    if customer_rung and (reason == NOBODY_ANSWERED or cause in _NO_ANSWER_CAUSES):
        return DialOutcome.NO_ANSWER
    return DialOutcome.FAILED


def customer_dial(settings: Settings) -> str:
    """The dial string of the customer's leg, checked: ``Tech/...{number}...``."""
    dial = settings.callback_customer_dial
    if not _DIAL.fullmatch(dial) or dial.count("{number}") != 1:
        raise ConfigError(
            f"callback_customer_dial: {dial!r} is not Tech/resource with one {{number}}, "
            "like PJSIP/{number}@trunk"
        )
    return dial


def ari_urls(settings: Settings, servers: Sequence[str]) -> dict[str, str]:
    """The ARI address of each server whose agents are dialled through it, by ami_servers name.

    ``ari_urls`` (``name=url, ...``) gives every server its own; otherwise ``ari_url`` is the
    one of ``ari_server`` (default the first server): an agent's endpoint and the customer's
    trunk are those of the agent's own Asterisk, so only its agents can be dialled."""
    if not settings.ari_urls.strip():
        name = settings.ari_server or (servers[0] if servers else "")
        if servers and name not in servers:
            raise ConfigError(f"ari_server: {name!r} is none of ami_servers ({', '.join(servers)})")
        return {name: settings.ari_url}
    urls: dict[str, str] = {}
    for item in (part.strip() for part in settings.ari_urls.split(",")):
        name, _, url = item.partition("=")
        name, url = name.strip(), url.strip()
        if name not in servers or name in urls or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"ari_urls: {item!r} is not name=http(s)://host:port with a name of "
                f"ami_servers ({', '.join(servers)}) listed once"
            )
        urls[name] = url
    return urls


class EveryServer:
    """The agents of several servers' live states together, as they are (unprefixed queues:
    a callback's queue is the plain queue name its call came through)."""

    def __init__(self, states: Mapping[str, Agents]) -> None:
        self._states = states

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]:
        return [agent for state in self._states.values() for agent in state.agent_snapshots(now)]

    def server_of(self, interface: str) -> str | None:
        """The server the agent is a queue member of now, if any."""
        for name, state in self._states.items():
            if any(agent.interface == interface for agent in state.agent_snapshots(utcnow())):
                return name
        return None


def dialled_by(
    server: str, agents: EveryServer, default: str
) -> Callable[[ClickToCallRequested], bool]:
    """Whether a click-to-call (a callback's included) is the ARI app of ``server``'s to place:
    the agent is a member of one of its queues (an agent in none is the ``default`` one's)."""

    def accepts(request: ClickToCallRequested) -> bool:
        return (agents.server_of(request.agent_endpoint) or default) == server

    return accepts


class CallbackDialler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        agents: Agents,
        *,
        policy: CallbackPolicy | None = None,
        timings: ClickToCallTimings | None = None,
        region: str = "RU",
        now: Callable[[], datetime] = utcnow,
        poll_seconds: float = 2.0,
    ) -> None:
        """``timings`` must match the ARI application's (they bound the wait for an outcome)."""
        self.sessions = sessions
        self.bus = bus
        self.agents = agents
        self.policy = policy or CallbackPolicy()
        self.timings = timings or ClickToCallTimings()
        self.region = region
        self.now = now
        self.poll_seconds = poll_seconds
        self._busy: set[str] = set()
        self._resting: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def free_agents(self) -> list[AgentSnapshot]:
        """Available agents this dialler is not already using, longest idle first."""
        clock = time.monotonic()
        return sorted(
            (
                agent
                for agent in self.agents.agent_snapshots(self.now())
                if free_queues(agent)
                and agent.interface not in self._busy
                and self._resting.get(agent.interface, 0.0) <= clock
            ),
            key=lambda agent: -agent.seconds_in_state,
        )

    async def run_once(self) -> int:
        """Start dialling a due callback for every free agent; returns how many were started."""
        started = 0
        agents = self.free_agents()
        if not agents:
            return 0
        async with self.sessions() as session:
            due = await due_queues(session, self.now())
        for agent in agents:
            if not due:
                break
            if "" not in due and not free_queues(agent) & due.keys():
                continue
            job = await self._claim(agent)
            if job is None:
                continue
            self.bus.publish(CallbackChanged(job.callback_id, CallbackStatus.ASSIGNED))
            key = job.queue if job.queue in due else ""
            due[key] = due.get(key, 1) - 1
            if due[key] <= 0:
                del due[key]
            self._busy.add(agent.interface)
            task = asyncio.get_running_loop().create_task(self._place(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _claim(self, agent: AgentSnapshot) -> _Job | None:
        async with unit_of_work(self.sessions) as session:
            callback = await claim_callback(
                session,
                agent_endpoint=agent.interface,
                queues=free_queues(agent),
                now=self.now(),
                policy=self.policy,
            )
            if callback is None:
                return None
            customer = await session.get(Customer, callback.customer_id)
            name = customer.display_name if customer else ""
            log.info("callback %s: agent %s calls back", callback.id, agent.interface)
            return _Job(callback.id, callback.phone, callback.queue, name, agent)

    async def _place(self, job: _Job) -> None:
        outcome, reason, call = DialOutcome.AGENT_MISSED, "", None
        try:
            outcome, reason, call = await self._dial(job)
        except Exception as exc:
            log.exception("callback %s broke", job.callback_id)
            reason = repr(exc)
        finally:
            self._busy.discard(job.agent.interface)
        if outcome is DialOutcome.AGENT_MISSED:
            rest = self.policy.agent_retry_after.total_seconds()
            self._resting[job.agent.interface] = time.monotonic() + rest
        try:
            async with unit_of_work(self.sessions) as session:
                row, recorded = await finish_attempt(
                    session,
                    job.callback_id,
                    outcome,
                    reason=reason,
                    now=self.now(),
                    policy=self.policy,
                    call=call,
                )
        except Exception:  # the lease lapses and the callback is taken up again
            log.exception("callback %s: could not record %s", job.callback_id, outcome)
            return
        log.info("callback %s: %s (%s) -> %s", job.callback_id, outcome, reason, row.status)
        if recorded is not None:  # to the CRM now, not at the feed's next catch-up scan
            self.bus.publish(recorded)
        self.bus.publish(CallbackChanged(job.callback_id, row.status))

    async def _dial(self, job: _Job) -> tuple[DialOutcome, str, PlacedCall | None]:
        request = ClickToCallRequested(job.agent.interface, job.phone, history=False)
        try:
            dial_targets(request, self.region)
        except ClickToCallRefused as exc:
            return DialOutcome.REFUSED, str(exc), None
        updates: asyncio.Queue[ClickToCallProgress] = asyncio.Queue()

        async def follow(update: ClickToCallProgress) -> None:
            if update.request_id == request.request_id:
                updates.put_nowait(update)

        unsubscribe = self.bus.subscribe(ClickToCallProgress, follow)
        try:
            self.bus.publish(request)
            return await self._follow(job, request, updates)
        finally:
            unsubscribe()

    async def _follow(
        self,
        job: _Job,
        request: ClickToCallRequested,
        updates: asyncio.Queue[ClickToCallProgress],
    ) -> tuple[DialOutcome, str, PlacedCall | None]:
        linkedid = f"callback-{job.callback_id}-{request.request_id[:12]}"
        started, answered = self.now(), None
        agent_rang = customer_rung = False
        ring_limit = START_SECONDS + self.timings.agent_ring + self.timings.customer_ring
        deadline = time.monotonic() + ring_limit
        renew = max(1.0, self.policy.lease.total_seconds() / 3)
        while True:
            wait = renew if answered else min(renew, deadline - time.monotonic())
            if wait <= 0:
                return DialOutcome.AGENT_MISSED, "the call was not placed in time", None
            try:
                update = await asyncio.wait_for(updates.get(), wait)
            except TimeoutError:
                await self._renew_lease(job.callback_id)
                continue
            if update.state is State.AGENT_RINGING:
                agent_rang = True
                self.bus.publish(self._ringing(job, linkedid))
            elif update.state is State.CUSTOMER_RINGING:
                customer_rung = True
            elif update.state is State.CONNECTED:
                answered = self.now()
            elif update.state is State.ENDED:
                call = PlacedCall(linkedid, started, answered or started, self.now())
                return DialOutcome.CONNECTED, update.reason, call
            elif update.state is State.FAILED:
                outcome = _failure(update.reason, agent_rang, customer_rung)
                rung = PlacedCall(linkedid, started, None, self.now())
                return outcome, update.reason, rung if outcome in CUSTOMER_SIDE else None

    def _ringing(self, job: _Job, linkedid: str) -> AgentRinging:
        """The screen-pop trigger: the agent sees the customer's card while the phone rings."""
        return AgentRinging(
            interface=job.agent.interface,
            agent_name=job.agent.name,
            queue=job.queue or CALLBACK_QUEUE,
            linkedid=linkedid,
            caller_number=job.phone,
            caller_name=job.customer_name,
            at=self.now(),
        )

    async def _renew_lease(self, callback_id: int) -> None:
        """Keep the claim while the call goes on, so no other dialler takes the row."""
        async with unit_of_work(self.sessions) as session:
            await session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == callback_id)
                .values(lease_until=self.now() + self.policy.lease)
            )

    async def drain(self) -> None:
        """Wait for the calls being placed to end and be recorded (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Dial due callbacks every ``poll_seconds`` until ``stop``; calls under way finish."""
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except Exception:  # the database may be away; try again next round
                    log.exception("callback dialler round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)
        finally:
            try:
                await asyncio.wait_for(self.drain(), STOP_SECONDS)
            except TimeoutError:  # their leases lapse and another dialler takes them up
                log.warning("stopping with %d callback calls still under way", len(self._tasks))

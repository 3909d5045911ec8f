"""Click-to-call: ring the agent's phone, then the customer, and bridge the two.

The web publishes ``ClickToCallRequested`` on the bus; the ARI application runs one
``ClickToCall`` per request and publishes ``ClickToCallProgress`` as it goes. Both legs are
originated into the Stasis app with channel ids chosen here, so their events are routed to
this call before the REST answer arrives. The customer leg names the agent's channel as its
originator, so both legs share one Linkedid (one call in the records): the agent leg's channel
id. When either leg ends, the other is hung up and the bridge destroyed.

A call that got as far as dialling the customer is then handed to ``record`` as a
``ClickToCallEnded`` (answered, or why not: busy, no answer, failed) for the customer's
history. One the agent's phone did not take is not: the customer never knew of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callcenter.automation.outbound_calls import ClickToCallEnded
from callcenter.channels.telephony.ari import AriClient, AriError
from callcenter.domain.errors import InvalidPhone
from callcenter.domain.identity import normalize_phone
from callcenter.models import CallOutcome, utcnow

log = logging.getLogger(__name__)

STASIS_ARG = "clicktocall"
CHANNEL_PREFIX = "c2c-"
_ENDPOINT = re.compile(r"PJSIP/[0-9A-Za-z_-]{1,32}")
TRUNK_DIAL = "PJSIP/{number}@trunk"
"""How the customer is dialled; ``{number}`` is the E.164 number (``+79161234567``)."""
NOBODY_ANSWERED = "nobody answered in time"
BUSY_CAUSES = frozenset({17})
"""Q.850 hangup causes of the customer's leg: user busy (SIP 486, 600)."""
NO_ANSWER_CAUSES = frozenset({0, 16, 18, 19})
"""Unknown and normal clearing (the ring time ran out, or the phone stopped ringing), no user
responding, no answer (SIP 408, 480): the customer's phone rang and nobody took the call."""


class State(enum.StrEnum):
    AGENT_RINGING = "agent_ringing"
    CUSTOMER_RINGING = "customer_ringing"
    CONNECTED = "connected"
    ENDED = "ended"
    FAILED = "failed"


@dataclass(frozen=True)
class ClickToCallRequested:
    agent_endpoint: str
    """The agent's ``User.sip_endpoint``: ``PJSIP/1001``."""
    number: str
    requested_by: int | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    history: bool = True
    """Store the call in the customer's history when it ends; False when the requester stores
    it itself (the callback dialler records its attempts with their callback)."""
    ticket_id: int | None = None
    """The ticket the agent called from: the stored call goes into its thread."""


@dataclass(frozen=True)
class ClickToCallProgress:
    request_id: str
    agent_endpoint: str
    number: str
    state: State
    reason: str = ""


class ClickToCallRefused(ValueError):
    """The request cannot be dialled (bad endpoint or number)."""


def dial_targets(request: ClickToCallRequested, region: str = "RU") -> tuple[str, str]:
    """(agent endpoint, E.164 customer number), or ClickToCallRefused."""
    if not _ENDPOINT.fullmatch(request.agent_endpoint):
        raise ClickToCallRefused(f"not an agent endpoint: {request.agent_endpoint!r}")
    try:
        return request.agent_endpoint, normalize_phone(request.number, region)
    except InvalidPhone as exc:
        raise ClickToCallRefused(str(exc)) from None


@dataclass(frozen=True)
class ClickToCallTimings:
    agent_ring: int = 30
    customer_ring: int = 45


class ClickToCall:
    """One click-to-call, from the agent's phone ringing to both legs gone."""

    def __init__(
        self,
        ari: AriClient,
        request: ClickToCallRequested,
        events: asyncio.Queue[dict[str, Any]],
        publish: Callable[[object], None],
        *,
        customer_dial: str = TRUNK_DIAL,
        timings: ClickToCallTimings | None = None,
        region: str = "RU",
        record: Callable[[ClickToCallEnded], Awaitable[None]] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """``record``: stores the call once it ended, if it reached the customer's side."""
        self.ari = ari
        self.request = request
        self.events = events
        self.publish = publish
        self.customer_dial = customer_dial
        self.timings = timings or ClickToCallTimings()
        self.region = region
        self.record = record
        self.now = now
        base = f"{CHANNEL_PREFIX}{uuid.uuid4().hex}"
        self.bridge_id = base
        self.agent_id = f"{base}-agent"
        self.customer_id = f"{base}-customer"
        self.state: State | None = None
        self._alive: set[str] = set()
        self.answered_at: datetime | None = None
        self.customer_dialled = False
        self._failure: tuple[str, int] | None = None
        """The leg whose end failed the call before it connected, with its hangup cause."""
        self._timed_out = False

    @property
    def channel_ids(self) -> tuple[str, str]:
        return self.agent_id, self.customer_id

    def _report(self, state: State, reason: str = "") -> None:
        self.state = state
        log.info("click-to-call %s: %s %s", self.request.request_id, state.value, reason)
        self.publish(
            ClickToCallProgress(
                self.request.request_id,
                self.request.agent_endpoint,
                self.request.number,
                state,
                reason,
            )
        )

    async def run(self) -> None:
        try:
            agent, number = dial_targets(self.request, self.region)
        except ClickToCallRefused as exc:
            self._report(State.FAILED, str(exc))
            return
        started = self.now()
        try:
            await self.ari.request(
                "POST", "bridges", params={"type": "mixing", "bridgeId": self.bridge_id}
            )
            await self._originate(self.agent_id, agent, number, self.timings.agent_ring)
            self._report(State.AGENT_RINGING)
            await self._follow(number)
        except AriError as exc:  # e.g. an endpoint Asterisk does not know
            self._report(State.FAILED, str(exc))
        except Exception as exc:
            log.exception("click-to-call %s broke", self.request.request_id)
            self._report(State.FAILED, repr(exc))
        finally:
            await self._clean_up()
        outcome = self.outcome()
        if outcome is not None and self.record is not None and self.request.history:
            ended = ClickToCallEnded(
                linkedid=self.agent_id,
                agent_endpoint=agent,
                phone=number,
                outcome=outcome,
                started_at=started,
                answered_at=self.answered_at,
                ended_at=self.now(),
                ticket_id=self.request.ticket_id,
            )
            try:
                await self.record(ended)
            except Exception:
                log.exception("click-to-call %s could not be stored", self.request.request_id)

    def outcome(self) -> CallOutcome | None:
        """How the call ended for the customer; None if it never reached their side."""
        if self.answered_at is not None:
            return CallOutcome.ANSWERED
        if not self.customer_dialled:
            return None  # the agent did not answer (or the call broke before dialling out)
        if self._timed_out:
            return CallOutcome.NO_ANSWER
        if self._failure is None:  # Asterisk refused the customer's leg, or the call broke
            return CallOutcome.FAILED
        leg, cause = self._failure
        if leg == "agent" or cause in NO_ANSWER_CAUSES:
            return CallOutcome.NO_ANSWER  # the agent gave up, or nobody took the call
        if cause in BUSY_CAUSES:
            return CallOutcome.BUSY
        return CallOutcome.FAILED

    async def _originate(self, channel_id: str, endpoint: str, caller: str, ring: int) -> None:
        params: dict[str, str | int] = {
            "endpoint": endpoint,
            "app": self.ari.app,
            "appArgs": STASIS_ARG,
            "channelId": channel_id,
            "timeout": ring,
        }
        if channel_id == self.agent_id:
            params["callerId"] = caller  # the agent's display shows whom they will talk to
        else:
            params["originator"] = self.agent_id
            self.customer_dialled = True
        self._alive.add(channel_id)
        await self.ari.request("POST", "channels", params=params)

    async def _follow(self, number: str) -> None:
        limit = self.timings.agent_ring + self.timings.customer_ring + 10
        try:
            async with asyncio.timeout(limit):
                while self.state not in (State.CONNECTED, State.ENDED, State.FAILED):
                    await self._step(await self.events.get(), number)
        except TimeoutError:
            self._timed_out = True
            self._report(State.FAILED, NOBODY_ANSWERED)
            return
        while self.state is State.CONNECTED:
            await self._step(await self.events.get(), number)

    async def _step(self, event: dict[str, Any], number: str) -> None:
        kind = event.get("type")
        channel = event.get("channel", {}).get("id")
        # A repeated start (ARI replays events after a reconnect) must not dial the customer
        # or report the connection again.
        if kind == "StasisStart" and channel == self.agent_id and self.state is State.AGENT_RINGING:
            await self._add(self.agent_id)
            dial = self.customer_dial.format(number=number)
            await self._originate(self.customer_id, dial, number, self.timings.customer_ring)
            self._report(State.CUSTOMER_RINGING)
        elif (
            kind == "StasisStart"
            and channel == self.customer_id
            and self.state is State.CUSTOMER_RINGING
        ):
            await self._add(self.customer_id)
            self.answered_at = self.now()
            self._report(State.CONNECTED)
        elif kind in ("StasisEnd", "ChannelDestroyed") and channel in self._alive:
            self._alive.discard(channel)
            if self.state is State.CONNECTED:
                self._report(State.ENDED, f"{self._leg(channel)} hung up")
            else:
                cause = event.get("cause_txt") or "left"
                self._failure = (self._leg(channel), int(event.get("cause") or 0))
                self._report(State.FAILED, f"{self._leg(channel)}: {cause}")

    def _leg(self, channel_id: str) -> str:
        return "agent" if channel_id == self.agent_id else "customer"

    async def _add(self, channel_id: str) -> None:
        await self.ari.request(
            "POST", f"bridges/{self.bridge_id}/addChannel", params={"channel": channel_id}
        )

    async def _clean_up(self) -> None:
        for channel_id in list(self._alive):
            with contextlib.suppress(Exception):
                await self.ari.request("DELETE", f"channels/{channel_id}")
        with contextlib.suppress(Exception):
            await self.ari.request("DELETE", f"bridges/{self.bridge_id}")

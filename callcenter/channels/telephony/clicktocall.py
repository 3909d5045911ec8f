"""Click-to-call: ring the agent's phone, then the customer, and bridge the two.

The web publishes ``ClickToCallRequested`` on the bus; the ARI application runs one
``ClickToCall`` per request and publishes ``ClickToCallProgress`` as it goes. Both legs are
originated into the Stasis app with channel ids chosen here, so their events are routed to
this call before the REST answer arrives. The customer leg names the agent's channel as its
originator, so both legs share one Linkedid (one call in the records). When either leg ends,
the other is hung up and the bridge destroyed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callcenter.channels.telephony.ari import AriClient, AriError
from callcenter.domain.errors import InvalidPhone
from callcenter.domain.identity import normalize_phone

log = logging.getLogger(__name__)

STASIS_ARG = "clicktocall"
CHANNEL_PREFIX = "c2c-"
_ENDPOINT = re.compile(r"PJSIP/[0-9A-Za-z_-]{1,32}")
TRUNK_DIAL = "PJSIP/{number}@trunk"
"""How the customer is dialled; ``{number}`` is the E.164 number (``+79161234567``)."""


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
    ) -> None:
        self.ari = ari
        self.request = request
        self.events = events
        self.publish = publish
        self.customer_dial = customer_dial
        self.timings = timings or ClickToCallTimings()
        self.region = region
        base = f"{CHANNEL_PREFIX}{uuid.uuid4().hex}"
        self.bridge_id = base
        self.agent_id = f"{base}-agent"
        self.customer_id = f"{base}-customer"
        self.state: State | None = None
        self._alive: set[str] = set()

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
        self._alive.add(channel_id)
        await self.ari.request("POST", "channels", params=params)

    async def _follow(self, number: str) -> None:
        limit = self.timings.agent_ring + self.timings.customer_ring + 10
        try:
            async with asyncio.timeout(limit):
                while self.state not in (State.CONNECTED, State.ENDED, State.FAILED):
                    await self._step(await self.events.get(), number)
        except TimeoutError:
            self._report(State.FAILED, "nobody answered in time")
            return
        while self.state is State.CONNECTED:
            await self._step(await self.events.get(), number)

    async def _step(self, event: dict[str, Any], number: str) -> None:
        kind = event.get("type")
        channel = event.get("channel", {}).get("id")
        if kind == "StasisStart" and channel == self.agent_id:
            await self._add(self.agent_id)
            dial = self.customer_dial.format(number=number)
            await self._originate(self.customer_id, dial, number, self.timings.customer_ring)
            self._report(State.CUSTOMER_RINGING)
        elif kind == "StasisStart" and channel == self.customer_id:
            await self._add(self.customer_id)
            self._report(State.CONNECTED)
        elif kind in ("StasisEnd", "ChannelDestroyed") and channel in self._alive:
            self._alive.discard(channel)
            if self.state is State.CONNECTED:
                self._report(State.ENDED, f"{self._leg(channel)} hung up")
            else:
                cause = event.get("cause_txt") or "left"
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

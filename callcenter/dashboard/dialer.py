"""Click-to-call as the web sees it: the `ClickToCall` protocol and its bus implementation.

The ARI application (stasis.run_ari_app) runs every ``ClickToCallRequested`` published on the
bus; the web only asks, and follows the progress events elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from callcenter.bus import Bus
from callcenter.channels.telephony.clicktocall import (
    ClickToCallRefused,
    ClickToCallRequested,
    dial_targets,
)


class ClickToCall(Protocol):
    async def call(
        self,
        agent_endpoint: str,
        number: str,
        requested_by: int | None,
        ticket_id: int | None = None,
    ) -> str:
        """Start ringing the agent, then the customer; returns the request id.

        ``ticket_id``: the ticket the agent calls about (already checked to be the customer's),
        stored with the call. Raises ``ClickToCallRefused`` (a ValueError) for a bad endpoint or
        number."""


class BusClickToCall:
    def __init__(
        self, bus: Bus, region: str = "RU", *, elsewhere: Callable[[str], str | None] | None = None
    ) -> None:
        """``elsewhere``: with several Asterisk servers, the one holding an endpoint that no ARI
        application reaches, else None (servers.held_elsewhere)."""
        self._bus = bus
        self._region = region
        self._elsewhere = elsewhere

    async def call(
        self,
        agent_endpoint: str,
        number: str,
        requested_by: int | None,
        ticket_id: int | None = None,
    ) -> str:
        request = ClickToCallRequested(agent_endpoint, number, requested_by, ticket_id=ticket_id)
        dial_targets(request, self._region)  # refuse bad input here, not in the ARI task
        server = self._elsewhere(agent_endpoint) if self._elsewhere is not None else None
        if server is not None:  # dialled through another server, it would ring the wrong phone
            raise ClickToCallRefused(
                f"{agent_endpoint} is on Asterisk {server!r}, which click-to-call does not reach"
            )
        self._bus.publish(request)
        return request.request_id

"""Click-to-call as the web sees it: the `ClickToCall` protocol and its bus implementation.

The ARI application (stasis.run_ari_app) runs every ``ClickToCallRequested`` published on the
bus; the web only asks, and follows the progress events elsewhere.
"""

from __future__ import annotations

from typing import Protocol

from callcenter.bus import Bus
from callcenter.channels.telephony.clicktocall import ClickToCallRequested, dial_targets


class ClickToCall(Protocol):
    async def call(self, agent_endpoint: str, number: str, requested_by: int | None) -> str:
        """Start ringing the agent, then the customer; returns the request id.

        Raises ``ClickToCallRefused`` (a ValueError) for a bad endpoint or number."""


class BusClickToCall:
    def __init__(self, bus: Bus, region: str = "RU") -> None:
        self._bus = bus
        self._region = region

    async def call(self, agent_endpoint: str, number: str, requested_by: int | None) -> str:
        request = ClickToCallRequested(agent_endpoint, number, requested_by)
        dial_targets(request, self._region)  # refuse bad input here, not in the ARI task
        self._bus.publish(request)
        return request.request_id

"""Delivering screen-pops: the card is built when the caller joins the queue and cached, so
that when an agent's phone rings (AgentCalled) the card only has to be sent.

The service knows nothing of the web: it is given a ``publish(user_id, event, data)`` callable
(the web app's event hub) and returns how many browser tabs got the card.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.telephony.events import AgentRinging, CallEnded, CallerJoined
from callcenter.crm.lookup import CrmLookup
from callcenter.models import ScreenPop, User, utcnow
from callcenter.screenpop.card import Card, build_card

log = logging.getLogger(__name__)

Publish = Callable[[int, str, dict[str, object]], int]
CACHE_SECONDS = 3600.0


def card_event(card: Card, ringing: AgentRinging) -> dict[str, object]:
    """The JSON sent to the agent's browser."""
    return {
        "id": f"pop:{ringing.linkedid}",
        "type": "screenpop",
        "queue": ringing.queue,
        "caller_name": ringing.caller_name,
        "at": ringing.at.isoformat(),
        **card.as_dict(),
    }


class ScreenPopService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publish: Publish,
        *,
        region: str = "RU",
        now: Callable[[], datetime] = utcnow,
        crm: CrmLookup | None = None,
    ) -> None:
        self._sessions = sessions
        self._crm = crm
        self._publish = publish
        self._region = region
        self._now = now
        self._cards: dict[str, tuple[float, asyncio.Task[Card]]] = {}
        self._agents: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(CallerJoined, self.on_caller_joined)
        bus.subscribe(AgentRinging, self.on_agent_ringing)
        bus.subscribe(CallEnded, self.on_call_ended)

    async def _build(self, caller_number: str) -> Card:
        async with self._sessions() as session:
            return await build_card(
                session, caller_number, self._now(), region=self._region, crm=self._crm
            )

    def _card(self, linkedid: str, caller_number: str) -> asyncio.Task[Card]:
        """The card of a call, started once and shared by every agent who rings."""
        cached = self._cards.get(linkedid)
        if (
            cached is None
            or cached[1].cancelled()
            or (cached[1].done() and cached[1].exception() is not None)
        ):
            task = asyncio.get_running_loop().create_task(self._build(caller_number))
            self._cards[linkedid] = (time.monotonic(), task)
            self._forget_stale()
            return task
        return cached[1]

    def _forget_stale(self) -> None:
        limit = time.monotonic() - CACHE_SECONDS
        for linkedid in [k for k, (at, _) in self._cards.items() if at < limit]:
            del self._cards[linkedid]

    async def on_caller_joined(self, joined: CallerJoined) -> None:
        """Start building the card while the caller waits."""
        self._card(joined.linkedid, joined.caller_number)

    async def on_call_ended(self, ended: CallEnded) -> None:
        self._cards.pop(ended.linkedid, None)

    async def _agent_user(self, interface: str) -> int | None:
        if interface not in self._agents:
            async with self._sessions() as session:
                user_id = await session.scalar(
                    select(User.id).where(User.sip_endpoint == interface, User.active.is_(True))
                )
            if user_id is None:
                return None
            self._agents[interface] = user_id
        return self._agents[interface]

    async def on_agent_ringing(self, ringing: AgentRinging) -> None:
        """Send the card to every open tab of the agent whose phone rings, and record it."""
        card_task = self._card(ringing.linkedid, ringing.caller_number)
        user_id = await self._agent_user(ringing.interface)
        card = await card_task
        if user_id is None:
            log.warning("no active agent has endpoint %s; screen-pop not sent", ringing.interface)
            return
        delivered = self._publish(user_id, "card", card_event(card, ringing))
        task = asyncio.get_running_loop().create_task(
            self._record(ringing, user_id, card, delivered)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(
        self, ringing: AgentRinging, user_id: int, card: Card, delivered: int
    ) -> None:
        try:
            async with self._sessions() as session, session.begin():
                session.add(
                    ScreenPop(
                        linkedid=ringing.linkedid,
                        user_id=user_id,
                        agent_interface=ringing.interface,
                        customer_id=card.customer_id,
                        caller_number=card.caller_number,
                        ticket_ids=card.ticket_ids,
                        interaction_ids=card.interaction_ids,
                        delivered=delivered,
                        shown_at=ringing.at,
                    )
                )
        except Exception:
            log.exception("could not record the screen-pop of call %s", ringing.linkedid)

    async def drain(self) -> None:
        """Wait for pending records (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

"""Callbacks with several Asterisk servers, each with its own ARI application on the one bus:
the dialler takes a free agent of any server that serves the callback's queue, and only that
server's ARI application places the call (an agent's endpoint lives on their own server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import request_callback
from callcenter.bus import Bus
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.channels.telephony.clicktocall import (
    ClickToCallProgress,
    ClickToCallRequested,
    State,
)
from callcenter.channels.telephony.dialler import CallbackDialler, EveryServer, dialled_by
from callcenter.channels.telephony.events import AgentState
from callcenter.channels.telephony.state import AgentSnapshot
from callcenter.db import unit_of_work
from callcenter.domain.customers import create_customer


def _agent(interface: str, state: AgentState, queues: tuple[str, ...]) -> AgentSnapshot:
    now = datetime.now(UTC)
    return AgentSnapshot(interface, "Agent", state, "", now, 60, queues, (), "", "", None, None, 0)


@dataclass
class Server:
    agents: list[AgentSnapshot]

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]:
        return self.agents


@dataclass
class AriApp:
    """One server's ARI application as the bus sees it: it places what it accepts."""

    name: str
    bus: Bus
    placed: list[ClickToCallRequested] = field(default_factory=list)

    def subscribe(self, agents: EveryServer, default: str) -> None:
        accepts = dialled_by(self.name, agents, default)

        async def click_to_call(request: ClickToCallRequested) -> None:
            if accepts(request):
                self.placed.append(request)
                self.bus.publish(
                    ClickToCallProgress(
                        request.request_id,
                        request.agent_endpoint,
                        request.number,
                        State.FAILED,
                        "agent: Call Rejected",
                    )
                )

        self.bus.subscribe(ClickToCallRequested, click_to_call)


async def test_a_callback_goes_to_a_free_agent_of_any_server_through_that_servers_ari(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    msk = Server(
        [
            _agent("PJSIP/1001", AgentState.ON_CALL, ("sales",)),
            _agent("PJSIP/1002", AgentState.AVAILABLE, ("support",)),
        ]
    )
    spb = Server([_agent("PJSIP/2001", AgentState.AVAILABLE, ("sales",))])
    agents = EveryServer({"msk": msk, "spb": spb})
    bus = Bus()
    apps = [AriApp("msk", bus), AriApp("spb", bus)]
    for app in apps:
        app.subscribe(agents, default="msk")
    async with unit_of_work(sessions) as session:
        customer = await create_customer(session, "Иван Петров")
        callback = await request_callback(
            session,
            customer_id=customer.id,
            ticket_id=None,
            phone="+79161234567",
            channel="call",
            due_at=datetime.now(UTC) - timedelta(minutes=1),
            queue="sales",
        )
    dialler = CallbackDialler(sessions, bus, agents)
    assert await dialler.run_once() == 1
    await dialler.drain()
    await bus.drain()
    msk_app, spb_app = apps
    assert msk_app.placed == []
    assert [r.agent_endpoint for r in spb_app.placed] == ["PJSIP/2001"]
    async with sessions() as session:
        row = await session.get(CallbackRequest, callback.id)
    assert (row.status, row.agent_endpoint, row.attempts) == (
        CallbackStatus.REQUESTED,
        "PJSIP/2001",
        0,  # the agent's phone refused: not the customer's attempt
    )

    # An agent in no queue of any server (click-to-call from their page) is the default's.
    lone = ClickToCallRequested("PJSIP/3001", "+79161234567")
    assert dialled_by("msk", agents, "msk")(lone) and not dialled_by("spb", agents, "msk")(lone)
    assert dialled_by("msk", agents, "msk")(ClickToCallRequested("PJSIP/1002", "+7916"))

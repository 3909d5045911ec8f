"""Several Asterisk servers: each supervisor action reaches the server that holds the agent (or
the ``server/queue`` the wallboard names), never simply the first one; click-to-call refuses an
agent whom only a server without an ARI application holds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from callcenter.bus import Bus
from callcenter.channels.telephony.clicktocall import ClickToCallRefused, ClickToCallRequested
from callcenter.channels.telephony.events import AgentState
from callcenter.channels.telephony.servers import held_elsewhere
from callcenter.channels.telephony.state import AgentSnapshot
from callcenter.dashboard.control import AmiControl, RoutedControl, SpyMode
from callcenter.dashboard.dialer import BusClickToCall
from tests.dashboard.test_control import FakeAmi

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def agent(interface: str, state: AgentState, *queues: str) -> AgentSnapshot:
    return AgentSnapshot(
        interface=interface, name=interface, state=state, reason="", since=NOW,
        seconds_in_state=0, queues=queues, paused_queues=(), caller_number="", caller_name="",
        call_queue=None, linkedid=None, calls_today=0,
    )  # fmt: skip


class Agents:
    def __init__(self, *agents: AgentSnapshot) -> None:
        self.agents = list(agents)

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]:
        return self.agents


@pytest.fixture
def servers() -> tuple[RoutedControl, FakeAmi, FakeAmi]:
    msk, spb = FakeAmi(), FakeAmi()
    states = {
        "msk": Agents(agent("PJSIP/1001", AgentState.AVAILABLE, "support")),
        "spb": Agents(
            agent("PJSIP/2001", AgentState.ON_CALL, "support"),
            agent("PJSIP/2003", AgentState.AVAILABLE),
        ),
    }
    control = RoutedControl({"msk": AmiControl(msk), "spb": AmiControl(spb)}, states)
    return control, msk, spb


async def test_each_action_goes_to_the_agents_own_server(servers) -> None:
    control, msk, spb = servers
    await control.pause("PJSIP/2001", "обед")
    await control.resume("PJSIP/2001", "spb/support")
    await control.pause("PJSIP/1001", "", "msk/support")
    await control.log_in("PJSIP/1001", "spb/sales", "Анна")  # a queue on the other server
    await control.log_out("PJSIP/2001", "support")  # unprefixed: the agent's server
    await control.spy("PJSIP/2003", "PJSIP/2001", SpyMode.LISTEN)
    assert [(a["Action"], a.get("Queue"), a.get("Interface")) for a in spb.sent] == [
        ("QueuePause", None, "PJSIP/2001"),
        ("QueuePause", "support", "PJSIP/2001"),
        ("QueueAdd", "sales", "PJSIP/1001"),
        ("QueueRemove", "support", "PJSIP/2001"),
        ("Originate", None, None),
    ]
    assert spb.sent[-1]["Channel"] == "PJSIP/2003"
    assert spb.sent[-1]["Data"] == "PJSIP/2001-,qE"
    assert msk.sent == [
        {"Action": "QueuePause", "Interface": "PJSIP/1001", "Paused": "true", "Queue": "support"}
    ]


async def test_unknown_agents_and_servers_are_refused_before_asterisk(servers) -> None:
    control, msk, spb = servers
    with pytest.raises(ValueError, match="no server holds"):
        await control.pause("PJSIP/9999", "")
    with pytest.raises(ValueError, match="no such server"):
        await control.log_in("PJSIP/1001", "ekb/support")
    with pytest.raises(ValueError, match="no server holds"):
        await control.spy("PJSIP/2001", "PJSIP/1001", SpyMode.BARGE)  # 1001 is not on a call
    with pytest.raises(ValueError, match="not a queue name"):
        await control.log_out("PJSIP/1001", "msk/a/b")
    assert msk.sent == spb.sent == []


async def test_click_to_call_refuses_an_agent_only_a_server_without_ari_holds() -> None:
    bus = Bus()
    asked: list[ClickToCallRequested] = []

    async def ari_app(request: ClickToCallRequested) -> None:
        asked.append(request)

    bus.subscribe(ClickToCallRequested, ari_app)
    states = {
        "msk": Agents(agent("PJSIP/1001", AgentState.AVAILABLE, "support")),
        "spb": Agents(
            agent("PJSIP/1001", AgentState.AVAILABLE, "support"),  # the same name on both
            agent("PJSIP/2001", AgentState.AVAILABLE, "support"),
        ),
    }
    dialer = BusClickToCall(bus, elsewhere=held_elsewhere(states, ["msk"]))  # ARI on msk only
    await dialer.call("PJSIP/1001", "+79161234567", None)
    await dialer.call("PJSIP/3001", "+79161234567", None)  # in no queue: ARI's server decides
    with pytest.raises(ClickToCallRefused, match="PJSIP/2001 is on Asterisk 'spb'"):
        await dialer.call("PJSIP/2001", "+79161234567", None)
    await asyncio.sleep(0)
    assert [r.agent_endpoint for r in asked] == ["PJSIP/1001", "PJSIP/3001"]

    everywhere = BusClickToCall(bus, elsewhere=held_elsewhere(states, ["msk", "spb"]))
    await everywhere.call("PJSIP/2001", "+79161234567", None)  # ari_urls: spb's app places it

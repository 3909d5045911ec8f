"""Click-to-call through the real Asterisk: the agent's sipp phone answers, then the
customer's, and ARI bridges the two legs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from callcenter.bus import Bus
from callcenter.channels.telephony.ari import AriClient
from callcenter.channels.telephony.clicktocall import (
    ClickToCallProgress,
    ClickToCallRequested,
    ClickToCallTimings,
    State,
)
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.channels.telephony.stasis import StasisApp
from tests.telephony.conftest import CUSTOMER_NUMBER, Ami, Pbx

pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@dataclass
class Phones:
    app: StasisApp
    ari: AriClient
    bus: Bus
    progress: list[ClickToCallProgress]
    customer_port: int

    async def wait_state(self, state: State, timeout: float = 15.0) -> ClickToCallProgress:
        async with asyncio.timeout(timeout):
            while True:
                for update in self.progress:
                    if update.state is state:
                        return update
                await asyncio.sleep(0.05)


@pytest.fixture
async def phones(pbx: Pbx, sessions) -> AsyncIterator[Phones]:
    settings = pbx.process.settings
    bus = Bus()
    progress: list[ClickToCallProgress] = []

    async def record(update: ClickToCallProgress) -> None:
        progress.append(update)

    bus.subscribe(ClickToCallProgress, record)
    ari = AriClient(
        f"http://127.0.0.1:{pbx.process.http_port}",
        settings.ari_username,
        settings.ari_password,
        "callcenter",
    )
    customer_port = free_port(socket.SOCK_DGRAM)
    app = StasisApp(
        ari,
        sessions,
        bus,
        # The test trunk has no provider: dial the customer's sipp phone through it directly.
        customer_dial=f"PJSIP/trunk/sip:{{number}}@127.0.0.1:{customer_port}",
        click_timings=ClickToCallTimings(agent_ring=10, customer_ring=10),
    )
    bus.subscribe(ClickToCallRequested, app.click_to_call)
    await ari.start()
    try:
        yield Phones(app, ari, bus, progress, customer_port)
    finally:
        await bus.drain()
        await app.close()
        await ari.stop()


async def test_click_to_call_bridges_the_agent_and_the_customer(
    pbx: Pbx, ami: Ami, phones: Phones, start_sipp
) -> None:
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    customer = await start_sipp("agent_answer.xml", phones.customer_port, "-d", "300")
    since = ami.log.mark()

    phones.bus.publish(ClickToCallRequested("PJSIP/1001", "8 (916) 123-45-67", requested_by=1))
    await phones.wait_state(State.CONNECTED)

    bridges = await phones.ari.request("GET", "bridges")
    [bridge] = [b for b in bridges if b["id"].startswith("c2c-")]
    legs = {}
    for channel_id in bridge["channels"]:
        channel = await phones.ari.request("GET", f"channels/{channel_id}")
        legs[channel["name"].split("-")[0]] = channel
    assert sorted(legs) == ["PJSIP/1001", "PJSIP/trunk"]
    assert legs["PJSIP/1001"]["state"] == legs["PJSIP/trunk"]["state"] == "Up"
    assert legs["PJSIP/1001"]["caller"]["number"] == CUSTOMER_NUMBER
    # AMI sees both legs enter one bridge, as one call (one Linkedid).
    entered = await ami.log.wait_for(since, "BridgeEnter", BridgeUniqueid=bridge["id"], count=2)
    assert len({e.headers["Linkedid"] for e in entered}) == 1

    # The agent's phone hangs up: the customer's leg goes too, and the bridge is gone.
    await phones.ari.request("DELETE", f"channels/{legs['PJSIP/1001']['id']}")
    ended = await phones.wait_state(State.ENDED)
    assert ended.reason == "agent hung up"
    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report  # each got its BYE
    await phones.bus.drain()
    assert [p.state for p in phones.progress] == [
        State.AGENT_RINGING,
        State.CUSTOMER_RINGING,
        State.CONNECTED,
        State.ENDED,
    ]
    assert not [b for b in await phones.ari.request("GET", "bridges") if b["id"] == bridge["id"]]


async def test_a_busy_customer_ends_the_agent_leg(
    pbx: Pbx, ami: Ami, phones: Phones, start_sipp
) -> None:
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    customer = await start_sipp("agent_busy.xml", phones.customer_port)

    phones.bus.publish(ClickToCallRequested("PJSIP/1001", CUSTOMER_NUMBER))
    failed = await phones.wait_state(State.FAILED)

    assert failed.reason.startswith("customer")
    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report  # the agent's phone got its BYE
    assert not await phones.ari.request("GET", "bridges")


async def test_a_request_that_cannot_be_dialled_fails_at_once(phones: Phones) -> None:
    phones.bus.publish(ClickToCallRequested("PJSIP/1001;evil", CUSTOMER_NUMBER))
    phones.bus.publish(ClickToCallRequested("PJSIP/1001", "call me maybe"))

    await phones.bus.drain()

    assert [p.state for p in phones.progress] == [State.FAILED, State.FAILED]
    assert "not an agent endpoint" in phones.progress[0].reason
    assert "not a phone number" in phones.progress[1].reason
    assert not await phones.ari.request("GET", "channels")


async def test_a_channel_nobody_owns_is_hung_up(pbx: Pbx, phones: Phones, start_sipp) -> None:
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")

    await phones.ari.request(
        "POST",
        "channels",
        params={"endpoint": "PJSIP/1001", "app": "callcenter", "appArgs": "clicktocall"},
    )

    code, report = await agent.finish(timeout=15)
    assert code == 0, report  # answered, then hung up by the app
    assert not await phones.ari.request("GET", "channels")

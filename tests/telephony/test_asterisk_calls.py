"""Calls through a real Asterisk with sipp phones, observed through the AMI adapter."""

from __future__ import annotations

import asyncio
import socket

import pytest

from callcenter.channels.telephony.ami import AmiAuthError, AmiClient
from callcenter.channels.telephony.pbx import AsteriskProcess
from callcenter.channels.telephony.pbxconfig import free_port
from tests.telephony.conftest import CUSTOMER_NAME, CUSTOMER_NUMBER, OUR_NUMBER, Ami, AmiProxy, Pbx

pytestmark = pytest.mark.asterisk


async def only_agent_1001_available(ami: Ami) -> None:
    """Agent 1002's phone is not a sipp phone in these tests: pause it in `support`."""
    for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
        response = await ami.client.send_action(
            {"Action": "QueuePause", "Queue": "support", "Interface": interface, "Paused": paused}
        )
        assert response.ok, response.headers


async def customer_calls(pbx: Pbx, start_sipp, scenario: str, agent: str, *agent_args: str):
    """Start agent 1001's phone with `agent`, then the customer with `scenario`; wait for both."""
    agent_phone = await start_sipp(agent, pbx.agent_ports["1001"], *agent_args)
    customer = await start_sipp(
        scenario,
        free_port(socket.SOCK_DGRAM),
        "-s", OUR_NUMBER, "-d", "3000", f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip
    customer_code, customer_report = await customer.finish()
    agent_code, agent_report = await agent_phone.finish()
    assert customer_code == 0, customer_report
    assert agent_code == 0, agent_report


async def test_answered_call_is_tracked_with_the_russian_caller_name(pbx, ami, start_sipp):
    await only_agent_1001_available(ami)
    since = ami.log.mark()

    await customer_calls(pbx, start_sipp, "customer_call.xml", "agent_answer.xml", "-d", "1000")

    [join] = await ami.log.wait_for(
        since, "QueueCallerJoin", Queue="support", CallerIDNum=CUSTOMER_NUMBER
    )
    linkedid = join.headers["Linkedid"]
    [called] = await ami.log.wait_for(since, "AgentCalled", Linkedid=linkedid)
    assert called.headers["CallerIDName"] == CUSTOMER_NAME
    assert called.headers["Interface"] == "PJSIP/1001"
    assert called.headers["MemberName"] == "Agent One"
    await ami.log.wait_for(since, "AgentConnect", Linkedid=linkedid, Interface="PJSIP/1001")
    [complete] = await ami.log.wait_for(since, "AgentComplete", Linkedid=linkedid)
    assert complete.headers["Reason"] == "caller"
    assert int(complete.headers["TalkTime"]) >= 1
    hangups = await ami.log.wait_for(since, "Hangup", Linkedid=linkedid, count=2)
    channels = sorted(h.headers["Channel"].split("-")[0] for h in hangups)
    assert channels == ["PJSIP/1001", "PJSIP/trunk"]


async def test_caller_who_hangs_up_while_queued_is_an_abandon(pbx, ami, start_sipp):
    await only_agent_1001_available(ami)
    since = ami.log.mark()

    await customer_calls(pbx, start_sipp, "customer_abandon.xml", "agent_noanswer.xml")

    [join] = await ami.log.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
    linkedid = join.headers["Linkedid"]
    [called] = await ami.log.wait_for(since, "AgentCalled", Linkedid=linkedid)
    assert called.headers["CallerIDName"] == CUSTOMER_NAME
    [abandon] = await ami.log.wait_for(since, "QueueCallerAbandon", Linkedid=linkedid)
    assert abandon.headers["Queue"] == "support"
    assert int(abandon.headers["HoldTime"]) >= 2
    assert not ami.log.matching(since, "AgentConnect", Linkedid=linkedid)


async def test_busy_agent_is_a_ring_no_answer(pbx, ami, start_sipp):
    await only_agent_1001_available(ami)
    since = ami.log.mark()

    await customer_calls(pbx, start_sipp, "customer_abandon.xml", "agent_busy.xml")

    [join] = await ami.log.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
    linkedid = join.headers["Linkedid"]
    [missed] = await ami.log.wait_for(since, "AgentRingNoAnswer", Linkedid=linkedid)
    assert missed.headers["Interface"] == "PJSIP/1001"
    await ami.log.wait_for(since, "QueueCallerAbandon", Linkedid=linkedid)


class Resync:
    """An on_login hook that fetches what a reconnect may have missed."""

    def __init__(self) -> None:
        self.queues: list[list[str]] = []
        self.logged_in = asyncio.Event()

    async def __call__(self, client: AmiClient) -> None:
        status = await client.send_action({"Action": "QueueStatus"})
        await client.send_action({"Action": "CoreShowChannels"})
        self.queues.append([e["Queue"] for e in status.events if e["Event"] == "QueueParams"])
        self.logged_in.set()

    async def wait(self, logins: int) -> None:
        async with asyncio.timeout(15):
            while len(self.queues) < logins:
                self.logged_in.clear()
                await self.logged_in.wait()


def client_via(pbx: Pbx, proxy: AmiProxy, resync: Resync) -> AmiClient:
    settings = pbx.process.settings
    return AmiClient(
        "127.0.0.1",
        proxy.port,
        settings.ami_username,
        settings.ami_secret,
        on_login=resync,
        ping_interval=0.5,
        pong_timeout=1.0,
        backoff=(0.1, 1.0),
    )


async def test_cut_connection_reconnects_and_resyncs(pbx, ami_proxy):
    resync = Resync()
    client = client_via(pbx, ami_proxy, resync)
    await client.start()
    try:
        await resync.wait(1)
        assert sorted(resync.queues[0]) == ["sales", "support"]

        ami_proxy.cut()
        await resync.wait(2)

        assert sorted(resync.queues[1]) == ["sales", "support"]
        pong = await client.send_action({"Action": "Ping"})
        assert pong.headers["Ping"] == "Pong"
    finally:
        await client.stop()


async def test_half_open_connection_is_noticed_by_the_watchdog(pbx, ami_proxy):
    resync = Resync()
    client = client_via(pbx, ami_proxy, resync)
    await client.start()
    try:
        await resync.wait(1)

        ami_proxy.freeze()  # nothing flows any more, yet no side closes the connection
        await resync.wait(2)

        assert client.logins == 2
        assert (await client.send_action({"Action": "Ping"})).ok
    finally:
        await client.stop()


async def test_wrong_secret_is_refused_clearly(pbx):
    settings = pbx.process.settings
    client = AmiClient("127.0.0.1", settings.ami_port, settings.ami_username, "wrong-secret-123")
    with pytest.raises(AmiAuthError, match="Authentication failed"):
        await client.start()


async def test_adapter_survives_an_asterisk_restart():
    resync = Resync()
    async with AsteriskProcess() as process:
        settings = process.settings
        client = AmiClient(
            "127.0.0.1",
            process.ami_port,
            settings.ami_username,
            settings.ami_secret,
            on_login=resync,
            backoff=(0.1, 1.0),
        )
        await client.start()
        try:
            await resync.wait(1)

            await process.restart()
            await resync.wait(2)

            assert process.ami_port == settings.ami_port
            assert sorted(resync.queues[1]) == ["sales", "support"]
        finally:
            await client.stop()
    assert not process.run_dir.exists()

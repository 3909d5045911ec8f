"""Faults during a real call: the AMI connection is cut, or Asterisk restarts, while an agent
is talking to a caller. Afterwards the live state equals Asterisk's and the call is recorded
exactly once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.channels.telephony.service import TelephonyService
from callcenter.config import Settings
from callcenter.models import Call, CallOutcome
from tests.telephony.conftest import OUR_NUMBER, Ami, AmiProxy, Pbx, Sipp

pytestmark = pytest.mark.asterisk


@pytest.fixture(autouse=True)
async def no_call_left(pbx: Pbx) -> AsyncIterator[None]:
    """After each test, hang up what a failure left, so the next test's agent is free."""
    yield
    await pbx.process.cli("channel request hangup all")


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


@asynccontextmanager
async def telephony(
    database_url: str, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, proxy: AmiProxy
) -> AsyncIterator[TelephonyService]:
    """The product's telephony service, reaching AMI through `proxy`, until the block ends."""
    pbx_settings = pbx.process.settings
    settings = Settings(
        database_url=database_url,
        ami_port=proxy.port,
        ami_user=pbx_settings.ami_username,
        ami_password=pbx_settings.ami_secret,
    )
    service = TelephonyService(settings, sessions, Bus(), queues={})
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await until(lambda: service.ami.connected, "the service logs in to AMI")
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def talking_to(service: TelephonyService, interface: str) -> str | None:
    """The Linkedid of the call the live state shows `interface` on."""
    for agent in service.state.agent_snapshots(datetime.now(UTC)):
        if agent.interface == interface:
            return agent.linkedid
    return None


async def answered_call(pbx: Pbx, ami: Ami, start_sipp) -> tuple[str, Sipp, Sipp]:  # type: ignore[no-untyped-def]
    """A caller talking to agent 1001 (1002 paused) for about 10 s; its Linkedid."""
    for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
        response = await ami.client.send_action(
            {"Action": "QueuePause", "Queue": "support", "Interface": interface, "Paused": paused}
        )
        assert response.ok, response.headers
    since = ami.log.mark()
    phone = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    caller = await start_sipp(
        "customer_call.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, "-d", "10000",
        f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip
    [connect] = await ami.log.wait_for(since, "AgentConnect", Interface="PJSIP/1001")
    return connect.headers["Linkedid"], phone, caller


async def records_of(sessions: async_sessionmaker[AsyncSession], linkedid: str) -> list[Call]:
    async with sessions() as session:
        return list(await session.scalars(select(Call).where(Call.linkedid == linkedid)))


async def recorded(sessions: async_sessionmaker[AsyncSession], linkedid: str) -> list[Call]:
    """The call's records once there is one, and a moment more for a duplicate to show."""
    async with asyncio.timeout(20):
        while not await records_of(sessions, linkedid):
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)
    return await records_of(sessions, linkedid)


async def test_a_call_outlives_a_cut_ami_connection_and_is_recorded_once(
    database_url: str, sessions, pbx: Pbx, ami: Ami, ami_proxy: AmiProxy, start_sipp
) -> None:
    async with telephony(database_url, sessions, pbx, ami_proxy) as service:
        linkedid, phone, caller = await answered_call(pbx, ami, start_sipp)
        await until(lambda: talking_to(service, "PJSIP/1001") == linkedid, "the agent on the call")
        logins, resyncs = service.ami.logins, service.resyncs

        ami_proxy.cut()

        await until(lambda: service.ami.logins > logins, "a new AMI login")
        await until(lambda: service.resyncs > resyncs, "the state resynchronised")
        # Resynchronised, the state still shows the agent on the same call.
        assert talking_to(service, "PJSIP/1001") == linkedid
        for sipp in (caller, phone):
            code, report = await sipp.finish()
            assert code == 0, report
        [record] = await recorded(sessions, linkedid)
        await until(lambda: service.state.calls_in_progress == 0, "the call ended")

    assert (record.outcome, record.agent_endpoint) == (CallOutcome.ANSWERED, "PJSIP/1001")
    assert record.talk_seconds >= 5


async def members_in_asterisk(ami: Ami) -> dict[str, bool]:
    """QueueStatus's members of the support queue: interface -> paused."""
    response = await ami.client.send_action(
        {"Action": "QueueStatus", "Queue": "support"}, timeout=15
    )
    return {
        (h.get("Interface") or h["Location"]): h.get("Paused") == "1"
        for h in response.events
        if h.get("Event") == "QueueMember"
    }


def members_in_state(service: TelephonyService) -> dict[str, bool]:
    return {
        a.interface: "support" in a.paused_queues
        for a in service.state.agent_snapshots(datetime.now(UTC))
        if "support" in a.queues
    }


async def test_after_an_asterisk_restart_mid_call_the_state_is_asterisks_and_the_call_recorded_once(
    database_url: str, sessions, pbx: Pbx, ami: Ami, ami_proxy: AmiProxy, start_sipp
) -> None:
    async with telephony(database_url, sessions, pbx, ami_proxy) as service:
        linkedid, phone, caller = await answered_call(pbx, ami, start_sipp)
        await until(lambda: talking_to(service, "PJSIP/1001") == linkedid, "the agent on the call")
        logins = service.ami.logins

        await pbx.process.restart()

        # The phones' dialogs died with Asterisk; they are not what this test is about.
        for sipp in (caller, phone):
            if sipp.process.returncode is None:
                sipp.process.kill()
            await sipp.process.wait()
        await until(lambda: service.ami.logins > logins, "a new AMI login", timeout=45)
        await until(lambda: ami.client.connected, "the test's own AMI client back", timeout=45)
        [record] = await recorded(sessions, linkedid)
        await until(lambda: service.state.calls_in_progress == 0, "no call left in the state")
        assert talking_to(service, "PJSIP/1001") is None
        in_asterisk = await members_in_asterisk(ami)
        assert in_asterisk, "QueueStatus lists the support queue's members"
        await until(
            lambda: members_in_state(service) == in_asterisk,
            f"the state's members {members_in_state(service)} equal QueueStatus {in_asterisk}",
            timeout=5,
        )
        assert service.state.queue_snapshot("support", datetime.now(UTC)).callers == ()

    assert (record.outcome, record.agent_endpoint) == (CallOutcome.ANSWERED, "PJSIP/1001")

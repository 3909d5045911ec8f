"""Two real Asterisk servers, each with its own AMI connection, feeding one wallboard: the
queues show side by side keyed by server, a call waiting on the second shows only there, and
its record is stored once. A supervisor's control reaches the second server: she pauses and
resumes its agent, and listens in on his call from her phone there."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from yarl import URL

from callcenter import health
from callcenter.channels.telephony.ami import AmiClient
from callcenter.channels.telephony.pbx import AsteriskProcess
from callcenter.channels.telephony.pbxconfig import PbxSettings, free_port
from callcenter.channels.telephony.servers import ami_servers
from callcenter.config import ConfigError, load_settings
from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import Call, CallOutcome, Role, User
from callcenter.passwords import hash_password
from callcenter.serve import serve
from tests.dbs import postgres_database
from tests.scale.processes import next_event
from tests.telephony.conftest import AGENT_PHONES, OUR_NUMBER, Pbx
from tests.web.helpers import Visitor

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]


@pytest.fixture
async def second_pbx() -> AsyncIterator[Pbx]:
    """Another Asterisk on its own loopback ports, with its own agents' sipp phones."""
    ports = {agent: free_port(socket.SOCK_DGRAM) for agent in AGENT_PHONES}
    contacts = {agent: f"sip:{agent}@127.0.0.1:{port}" for agent, port in ports.items()}
    async with AsteriskProcess(PbxSettings.ephemeral(agent_contacts=contacts)) as process:
        yield Pbx(process, ports)


async def queues_on(wallboard) -> dict[str, dict]:
    return {q["name"]: q for q in (await next_event(wallboard, "wallboard"))["queues"]}


def test_servers_come_from_settings_with_passwords_from_the_environment(tmp_path: Path) -> None:
    env = {
        "CALLCENTER_AMI_SERVERS": "msk=10.0.0.5:5038:callcenter, spb=pbx-spb:5039:cc",
        "CALLCENTER_AMI_PASSWORD_MSK": "secret-msk",
        "CALLCENTER_AMI_PASSWORD_SPB": "secret-spb",
    }
    msk, spb = ami_servers(load_settings(env))
    assert (msk.name, msk.host, msk.port, msk.user, msk.password) == (
        "msk", "10.0.0.5", 5038, "callcenter", "secret-msk",
    )  # fmt: skip
    assert (spb.host, spb.port, spb.password, spb.health_name) == (
        "pbx-spb",
        5039,
        "secret-spb",
        "ami:spb",
    )
    assert "secret" not in repr(msk) + repr(load_settings(env))

    with pytest.raises(ConfigError, match="CALLCENTER_AMI_PASSWORD_SPB"):
        ami_servers(load_settings({**env, "CALLCENTER_AMI_PASSWORD_SPB": ""}))
    with pytest.raises(ConfigError, match="name=host:port:user"):
        ami_servers(load_settings({**env, "CALLCENTER_AMI_SERVERS": "msk=10.0.0.5:5038"}))
    config = tmp_path / "callcenter.toml"
    config.write_text('[ami]\nservers = "msk=10.0.0.5:5038:cc"\npassword_msk = "leak"\n')
    with pytest.raises(ConfigError, match="contains secrets"):
        load_settings({}, config_file=config)


async def test_two_asterisk_servers_feed_one_wallboard_side_by_side(
    pbx: Pbx, second_pbx: Pbx, start_sipp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = pbx.process.settings, second_pbx.process.settings
    async with postgres_database("cc_servers") as url:
        await upgrade_async(url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            session.add(
                User(
                    username="sveta",
                    role=Role.SUPERVISOR,
                    password_hash=hash_password("password-sveta"),
                    sip_endpoint="PJSIP/1003",
                )
            )
        port = free_port()
        settings = load_settings(
            {
                "CALLCENTER_DATABASE_URL": url,
                "CALLCENTER_DATA_DIR": str(tmp_path),
                "CALLCENTER_SESSION_KEY": "servers-test-session-key-" + "z" * 32,
                "CALLCENTER_AGI_PORT": str(free_port()),
                "CALLCENTER_AMI_SERVERS": f"msk=127.0.0.1:{first.ami_port}:{first.ami_username},"
                f"spb=127.0.0.1:{second.ami_port}:{second.ami_username}",
                "CALLCENTER_AMI_PASSWORD_MSK": first.ami_secret,
                "CALLCENTER_AMI_PASSWORD_SPB": second.ami_secret,
            }
        )
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop))
        spb = AmiClient("127.0.0.1", second.ami_port, second.ami_username, second.ami_secret)
        sveta = Visitor(URL(f"http://127.0.0.1:{port}"))
        try:
            await spb.start()
            for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
                response = await spb.send_action(
                    {"Action": "QueuePause", "Queue": "support", "Interface": interface,
                     "Paused": paused}
                )  # fmt: skip
                assert response.ok, response.headers
            async with asyncio.timeout(30):
                while not all(
                    c.state is health.State.OK
                    for c in health.registry.snapshot()
                    if c.name in ("ami:msk", "ami:spb")
                ) or {"ami:msk", "ami:spb"} - {c.name for c in health.registry.snapshot()}:
                    assert not task.done(), task
                    await asyncio.sleep(0.2)
                while (await sveta.login("sveta")).status != 303:
                    await asyncio.sleep(0.2)
            wallboard = await sveta.get("/events")
            board = await next_event(wallboard, "wallboard")
            # The test servers have no systemname: the operator is told call ids may collide.
            warned = {r.args[0] for r in caplog.records if "no systemname" in r.getMessage()}
            assert warned == {"msk", "spb"}
            before = {q["name"]: q for q in board["queues"]}
            assert "msk/support" in before and "spb/support" in before

            phone = await start_sipp("agent_noanswer.xml", second_pbx.agent_ports["1001"])
            caller = await start_sipp(
                "customer_abandon.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER,
                f"127.0.0.1:{second.sip_port}",
            )  # fmt: skip
            async with asyncio.timeout(20):
                while True:
                    queues = await queues_on(wallboard)
                    if queues["spb/support"]["waiting"] == 1:
                        break
            assert queues["msk/support"]["waiting"] == 0
            linkedid = queues["spb/support"]["callers"][0]["linkedid"]
            for process in (caller, phone):
                code, report = await process.finish()
                assert code == 0, report

            async with asyncio.timeout(20):
                while True:
                    queues = await queues_on(wallboard)
                    if queues["spb/support"]["abandoned"] == before["spb/support"]["abandoned"] + 1:
                        break
            assert queues["msk/support"]["abandoned"] == before["msk/support"]["abandoned"]
            async with asyncio.timeout(20):
                while True:
                    async with sessions() as session:
                        call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
                    if call is not None:
                        break
                    await asyncio.sleep(0.2)
            assert call.outcome is CallOutcome.ABANDONED and call.queue == "support"

            await control_reaches_the_second_server(sveta, wallboard, spb, second_pbx, start_sipp)
        finally:
            await sveta.close()
            await spb.stop()
            stop.set()
            await asyncio.wait_for(task, 20)
            await engine.dispose()


async def member_on(ami: AmiClient, interface: str) -> dict[str, str]:
    response = await ami.send_action(
        {"Action": "QueueStatus", "Queue": "support", "Member": interface}
    )
    [member] = [e for e in response.events if e.get("Event") == "QueueMember"]
    return dict(member)


async def agents_on(wallboard) -> dict[tuple[str, ...], dict]:
    """The wallboard's agents keyed by (interface, their queues): 1001 is on both servers."""
    board = await next_event(wallboard, "wallboard")
    return {(a["interface"], *a["queues"]): a for a in board["agents"]}


async def spies_on(ami: AmiClient) -> list[str]:
    response = await ami.send_action({"Action": "CoreShowChannels"})
    return [
        e.get("ApplicationData", "")
        for e in response.events
        if e.get("Event") == "CoreShowChannel"
        and e.get("Channel", "").startswith("PJSIP/1003-")
        and e.get("Application") == "ChanSpy"
    ]


async def control_reaches_the_second_server(
    sveta: Visitor, wallboard, spb: AmiClient, second_pbx: Pbx, start_sipp
) -> None:
    anna = ("PJSIP/1001", "spb/support")
    form = {"interface": "PJSIP/1001", "queue": "spb/support", "reason": "обед"}
    paused = await sveta.post_form("/supervisor/agents/pause", form)
    assert paused.status == 200, await paused.text()
    assert (await member_on(spb, "PJSIP/1001"))["Paused"] == "1"
    async with asyncio.timeout(20):
        while (agents := await agents_on(wallboard))[anna]["state"] != "paused":
            pass
    assert agents[("PJSIP/1001", "msk/support")]["state"] != "paused"  # the first: untouched
    resumed = await sveta.post_form("/supervisor/agents/resume", form)
    assert resumed.status == 200, await resumed.text()
    assert (await member_on(spb, "PJSIP/1001"))["Paused"] == "0"

    phone = await start_sipp("agent_answer.xml", second_pbx.agent_ports["1001"], "-d", "300")
    caller = await start_sipp(
        "customer_call.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, "-d", "15000",
        f"127.0.0.1:{second_pbx.process.settings.sip_port}",
    )  # fmt: skip
    supervisor = await start_sipp(
        "agent_answer.xml", second_pbx.agent_ports["1003"], "-d", "200", "-m", "1"
    )
    async with asyncio.timeout(20):
        while (await agents_on(wallboard))[anna]["state"] != "on_call":
            pass
    listen = await sveta.post_form("/supervisor/spy/listen", {"interface": "PJSIP/1001"})
    assert listen.status == 200, await listen.text()
    async with asyncio.timeout(15):
        while await spies_on(spb) != ["PJSIP/1001-,qE"]:
            await asyncio.sleep(0.2)
    for process in (caller, phone, supervisor):
        code, report = await process.finish()
        assert code == 0, report

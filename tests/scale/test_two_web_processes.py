"""Two real ``callcenter serve`` processes on one PostgreSQL database, as behind a load
balancer: only the first has telephony (AMI to the real Asterisk). An agent signed in on the
second gets the screen-pop of a call the first one sees ring her phone, and a supervisor on
the second gets the first one's wallboard; the pop's record counts the agent's stream on the
second as delivered; after the second's LISTEN connection is killed it recovers and the next
call's pop still arrives."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.models import Role, ScreenPop
from tests.scale.processes import (
    listening,
    next_event,
    serve_process,
    terminate_backend,
)
from tests.telephony.conftest import OUR_NUMBER, Ami, Pbx
from tests.telephony.product import add_staff
from tests.web.helpers import Visitor

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]
CALLER = "+79035556677"


@pytest.fixture
async def staff(database: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    """Agents anna (1001) and boris (1002), supervisor sveta."""
    _, sessions = database
    await add_staff(sessions, "anna", Role.AGENT, "PJSIP/1001")
    await add_staff(sessions, "boris", Role.AGENT, "PJSIP/1002")
    await add_staff(sessions, "sveta", Role.SUPERVISOR)


async def ring_1001(ami: Ami, pbx: Pbx, start_sipp, callers: Path) -> None:
    """A caller into the support queue while only 1001 is available; both sipp runs end well."""
    for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
        response = await ami.client.send_action(
            {"Action": "QueuePause", "Queue": "support", "Interface": interface, "Paused": paused}
        )
        assert response.ok, response.headers
    callers.write_text(f"SEQUENTIAL\n{CALLER};Клиент\n")
    phone = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "1000")
    caller = await start_sipp(
        "customer_as.xml", free_port(socket.SOCK_DGRAM), "-inf", str(callers),
        "-s", OUR_NUMBER, "-d", "3000", f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip
    for process in (caller, phone):
        code, report = await process.finish()
        assert code == 0, report


@pytest.mark.usefixtures("staff")
async def test_a_pop_raised_on_one_process_reaches_the_agent_on_another(
    database, pbx: Pbx, ami: Ami, start_sipp, tmp_path: Path
) -> None:
    url, sessions = database
    telephony_env = {
        "CALLCENTER_AMI_PORT": str(pbx.process.settings.ami_port),
        "CALLCENTER_AMI_USER": pbx.process.settings.ami_username,
        "CALLCENTER_AMI_PASSWORD": pbx.process.settings.ami_secret,
        "CALLCENTER_AGI_PORT": str(pbx.process.settings.agi_port),
    }
    async with (
        serve_process(url, tmp_path / "a", telephony_env),
        serve_process(url, tmp_path / "b", {}) as second,
    ):
        anna, sveta, boris = (Visitor(URL(second.base)) for _ in range(3))
        try:
            for visitor, name in ((anna, "anna"), (sveta, "sveta"), (boris, "boris")):
                assert (await visitor.login(name)).status == 303
            anna_stream = await anna.get("/events")
            boris_stream = await boris.get("/events")
            wallboard = await sveta.get("/events")
            assert anna_stream.status == wallboard.status == boris_stream.status == 200

            board = await next_event(wallboard, "wallboard")
            assert "support" in str(board)

            await ring_1001(ami, pbx, start_sipp, tmp_path / "callers.csv")
            card = await next_event(anna_stream, "card")
            assert card["caller_number"] == CALLER and card["queue"] == "support"
            first_pop = card["id"]
            async with asyncio.timeout(10):
                while True:
                    async with sessions() as session:
                        pop = await session.scalar(select(ScreenPop))
                    if pop is not None:
                        break
                    await asyncio.sleep(0.2)
            assert pop.delivered == 1  # Anna's one stream, open on the other process

            old = await listening(url, second.application_name)
            await terminate_backend(url, old)
            await listening(url, second.application_name, other_than=old)

            await ring_1001(ami, pbx, start_sipp, tmp_path / "callers2.csv")
            card = await next_event(anna_stream, "card")
            assert card["caller_number"] == CALLER and card["id"] != first_pop
            await next_event(wallboard, "wallboard")  # still flowing after the reconnect
            # Boris's phone never rang: nothing reached his stream on either process.
            assert b"event:" not in boris_stream.content.read_nowait()
        finally:
            for visitor in (anna, sveta, boris):
                await visitor.close()

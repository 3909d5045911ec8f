"""End to end: a supervisor listens, whispers and barges into an agent's call through the real
Asterisk. A sipp customer talks to the sipp agent 1001; the supervisor clicks on the wallboard
in Chromium; her phone (a sipp UAS on 1003) rings and runs ChanSpy on the agent's channel,
which CoreShowChannels shows with the mode's options. Agents and spying on an agent who is not
on a call are refused."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.models import AuditLog, Role
from tests.browser import browser as browser  # the fixture
from tests.telephony.conftest import OUR_NUMBER, Ami, Pbx
from tests.telephony.product import add_staff, running_product, signed_in
from tests.telephony.test_wallboard_e2e import _text, pause, until
from tests.web.helpers import Visitor

pytestmark = pytest.mark.asterisk
SPY_OPTIONS = {"listen": "PJSIP/1001-,qE", "whisper": "PJSIP/1001-,qwE", "barge": "PJSIP/1001-,qBE"}


@pytest.fixture
async def base(
    database_url: str, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, tmp_path: Path
) -> AsyncIterator[str]:
    await add_staff(sessions, "sveta", Role.SUPERVISOR, "PJSIP/1003")
    await add_staff(sessions, "anna", Role.AGENT, "PJSIP/1001")
    await add_staff(sessions, "boris", Role.AGENT, "PJSIP/1002")
    async with running_product(database_url, pbx, tmp_path) as url:
        yield url


@pytest.fixture
async def boris_paused(ami: Ami) -> AsyncIterator[None]:
    """Calls go to Anna alone; Boris is unpaused afterwards."""
    await pause(ami, "PJSIP/1002", True, "обед")
    yield
    await pause(ami, "PJSIP/1002", False)


async def spies(ami: Ami) -> dict[str, str]:
    """The supervisor phone's channels running ChanSpy: channel name -> ChanSpy's arguments."""
    response = await ami.client.send_action({"Action": "CoreShowChannels"})
    return {
        e["Channel"]: e.get("ApplicationData", "")
        for e in response.events
        if e.get("Event") == "CoreShowChannel"
        and e.get("Channel", "").startswith("PJSIP/1003-")
        and e.get("Application") == "ChanSpy"
    }


async def test_a_supervisor_listens_whispers_and_barges_through_her_phone(
    base: str,
    browser: Browser,
    pbx: Pbx,
    ami: Ami,
    start_sipp,
    boris_paused,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    page, seen = await signed_in(browser, base, "sveta", "/supervisor")
    await page.wait_for_selector("#wallboard[data-state=open]")
    anna = page.locator("#wb-agents tr[data-interface='PJSIP/1001']")
    boris = page.locator("#wb-agents tr[data-interface='PJSIP/1002']")
    await until(_text(anna.locator(".a-state"), "свободен"))
    assert await anna.locator("button.wb-listen").is_disabled()

    # The agent refuses no call; the customer talks long enough for three spies to join.
    phone = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    trunk = f"127.0.0.1:{pbx.process.sip_port}"
    caller = await start_sipp(
        "customer_call.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, "-d", "20000", trunk
    )
    supervisor = await start_sipp(
        "agent_answer.xml", pbx.agent_ports["1003"], "-d", "200", "-m", "3"
    )
    await until(_text(anna.locator(".a-state"), "разговаривает"), 15.0)
    assert await boris.locator("button.wb-listen").is_disabled()

    expected: dict[str, str] = {}
    for mode in ("listen", "whisper", "barge"):
        await anna.locator(f"button.wb-{mode}").click()
        expected_data = sorted([*expected.values(), SPY_OPTIONS[mode]])

        async def joined(want: list[str] = expected_data) -> bool:
            return sorted((await spies(ami)).values()) == want

        try:
            await until(joined, 15.0)
        except TimeoutError:
            pytest.fail(f"{mode}: ChanSpy channels {await spies(ami)}, expected {expected_data}")
        expected = await spies(ami)
        assert await page.locator("#wb-error").is_hidden()

    # Refused: spying on an agent who is not on a call, and spying as an agent.
    sveta, agent = Visitor(URL(base)), Visitor(URL(base))
    try:
        assert (await sveta.login("sveta")).status == 303
        idle = await sveta.post_form("/supervisor/spy/listen", {"interface": "PJSIP/1002"})
        assert (idle.status, (await idle.json())["error"]) == (
            409,
            "Оператор сейчас не разговаривает.",
        )
        bad = await sveta.post_form("/supervisor/spy/listen", {"interface": "PJSIP/1001-,q"})
        assert bad.status == 409  # no such agent: never reaches Asterisk
        assert (await agent.login("boris")).status == 303
        refused = await agent.post_form("/supervisor/spy/listen", {"interface": "PJSIP/1001"})
        assert refused.status == 403
    finally:
        await sveta.close()
        await agent.close()
    assert len(await spies(ami)) == 3

    # The call ends: ChanSpy ends with it (option E) and every phone finished cleanly.
    for process in (caller, phone, supervisor):
        code, report = await process.finish()
        assert code == 0, report
    await until(_no_spies(ami))
    async with sessions() as db:
        entries = list(await db.scalars(select(AuditLog).where(AuditLog.target_type == "agent")))
    assert [(e.action, e.actor, e.target_id, e.details) for e in entries] == [
        (f"agent.{mode}", "sveta", "PJSIP/1001", {"from": "PJSIP/1003"})
        for mode in ("listen", "whisper", "barge")
    ]
    seen.assert_inert()
    await page.context.close()


def _no_spies(ami: Ami):
    async def check() -> bool:
        return not await spies(ami)

    return check

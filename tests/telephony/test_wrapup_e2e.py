"""End to end: an Asterisk whose queues have a wrapuptime (as production's queues.conf does,
shortened). After an answered call the wallboard in headless Chromium shows the agent in
"wrap-up" with a growing time in state, Asterisk does not count her available meanwhile, and
when the wrap-up is over she shows available again, as Asterisk says."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.ami import AmiClient
from callcenter.channels.telephony.pbx import AsteriskProcess
from callcenter.channels.telephony.pbxconfig import PbxSettings, free_port
from callcenter.models import Role
from tests.browser import browser as browser  # the fixture
from tests.telephony.conftest import AGENT_PHONES, OUR_NUMBER, Ami, EventLog, Pbx
from tests.telephony.product import add_staff, running_product, signed_in
from tests.telephony.test_wallboard_e2e import (
    _grown,
    _text,
    agrees_with_asterisk,
    pause,
    seconds,
    until,
)

pytestmark = pytest.mark.asterisk
WRAPUP = 15  # long enough to be seen under load, short enough for a test


@pytest.fixture
async def wrapping_pbx() -> AsyncIterator[Pbx]:
    ports = {agent: free_port(socket.SOCK_DGRAM) for agent in AGENT_PHONES}
    contacts = {agent: f"sip:{agent}@127.0.0.1:{port}" for agent, port in ports.items()}
    settings = PbxSettings.ephemeral(agent_contacts=contacts, wrapup_seconds=WRAPUP)
    async with AsteriskProcess(settings) as process:
        yield Pbx(process, ports)


@pytest.fixture
async def wrapping_ami(wrapping_pbx: Pbx) -> AsyncIterator[Ami]:
    s = wrapping_pbx.process.settings
    client = AmiClient("127.0.0.1", s.ami_port, s.ami_username, s.ami_secret)
    await client.start()
    try:
        yield Ami(client, EventLog())
    finally:
        await client.stop()


@pytest.fixture
async def base(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    wrapping_pbx: Pbx,
    tmp_path: Path,
) -> AsyncIterator[str]:
    await add_staff(sessions, "sveta", Role.SUPERVISOR)
    await add_staff(sessions, "anna", Role.AGENT, "PJSIP/1001")
    await add_staff(sessions, "boris", Role.AGENT, "PJSIP/1002")
    async with running_product(database_url, wrapping_pbx, tmp_path) as url:
        yield url


async def test_after_a_call_the_agent_wraps_up_then_is_available(
    base: str, browser: Browser, wrapping_pbx: Pbx, wrapping_ami: Ami, start_sipp
) -> None:
    ami = wrapping_ami
    await pause(ami, "PJSIP/1002", True, "обед")  # the call goes to Anna
    page, seen = await signed_in(browser, base, "sveta", "/supervisor")
    await page.wait_for_selector("#wallboard[data-state=open]")
    anna = page.locator("#wb-agents tr[data-interface='PJSIP/1001']")
    support = page.locator("#wb-queues tr[data-queue='support']")
    await until(_text(anna.locator(".a-state"), "свободен"), 15.0)

    phone = await start_sipp("agent_answer.xml", wrapping_pbx.agent_ports["1001"], "-d", "1500")
    trunk = f"127.0.0.1:{wrapping_pbx.process.settings.sip_port}"
    caller = await start_sipp(
        "customer_call.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, "-d", "3000", trunk
    )
    await until(_text(anna.locator(".a-state"), "разговаривает"), 15.0)
    for process in (caller, phone):
        code, report = await process.finish()
        assert code == 0, report

    await until(_text(anna.locator(".a-state"), "постобработка"), 10.0)
    # A caller now waits (the dialplan answers: they stay 10 s past the wrap-up): Asterisk
    # keeps to the wrap-up, then rings Anna.
    phone = await start_sipp("agent_answer.xml", wrapping_pbx.agent_ports["1001"], "-d", "500")
    stay = str((WRAPUP + 10) * 1000)
    caller = await start_sipp(
        "customer_call.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, "-d", stay, trunk
    )
    await until(_text(support.locator(".q-waiting"), "1"), 10.0)
    # QueueSummary counts an agent in wrap-up as available (not in use, not paused); so does
    # the queue row, while the agent row says why the queue does not ring her.
    assert await agrees_with_asterisk(ami, support) == {"Callers": 1, "LoggedIn": 2, "Available": 1}
    assert await anna.locator(".a-state").inner_text() == "постобработка"
    first = await seconds(anna.locator(".a-since"))
    await until(_grown(anna.locator(".a-since"), first), 5.0)
    await until(_text(anna.locator(".a-state"), "разговаривает"), WRAPUP + 10.0)
    for process in (caller, phone):
        code, report = await process.finish()
        assert code == 0, report
    await until(_text(anna.locator(".a-state"), "постобработка"), 10.0)
    await until(_text(anna.locator(".a-state"), "свободен"), WRAPUP + 10.0)
    assert await agrees_with_asterisk(ami, support) == {"Callers": 0, "LoggedIn": 2, "Available": 1}
    assert await page.locator("#wb-error").is_hidden()
    seen.assert_inert()
    await pause(ami, "PJSIP/1002", False)
    await page.context.close()

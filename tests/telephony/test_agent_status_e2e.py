"""End to end: an agent pauses from their own page with a reason and resumes, against the real
Asterisk; QueueStatus shows the pause and its reason, and the page shows Asterisk's state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import Role
from tests.browser import browser as browser  # the fixture
from tests.telephony.conftest import Ami, Pbx
from tests.telephony.product import add_staff, running_product, signed_in

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def base(
    database_url: str, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, tmp_path: Path
) -> AsyncIterator[str]:
    await add_staff(sessions, "anna", Role.AGENT, "PJSIP/1001")
    async with running_product(database_url, pbx, tmp_path) as url:
        yield url


async def member(ami: Ami, interface: str) -> dict[str, str]:
    response = await ami.client.send_action(
        {"Action": "QueueStatus", "Queue": "support", "Member": interface}
    )
    [found] = [e for e in response.events if e.get("Event") == "QueueMember"]
    return found


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


def shows(cell: Locator, expected: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await cell.inner_text() == expected

    return check


@pytest.fixture
async def resumed(ami: Ami) -> AsyncIterator[None]:
    """Leave the agent unpaused for the tests that follow, whatever happened."""
    yield
    await ami.client.send_action(
        {"Action": "QueuePause", "Interface": "PJSIP/1001", "Paused": "false"}
    )


async def test_the_agent_pauses_with_a_reason_and_resumes_from_their_page(
    base: str, browser: Browser, ami: Ami, resumed: None
) -> None:
    page, seen = await signed_in(browser, base, "anna", "/agent")
    state, reason = page.locator("#status-state"), page.locator("#status-reason")
    await until(shows(state, "свободен"))
    assert (await member(ami, "PJSIP/1001"))["Paused"] == "0"

    await page.select_option("#pause-reason", "Обучение")
    await page.click("#status-pause-button")
    await until(shows(state, "на паузе"))  # the page re-reads the live state from Asterisk
    assert await reason.inner_text() == "Обучение"
    found = await member(ami, "PJSIP/1001")
    assert (found["Paused"], found["PausedReason"]) == ("1", "Обучение")

    await page.click("#status-resume-button")
    await until(shows(state, "свободен"))
    assert (await member(ami, "PJSIP/1001"))["Paused"] == "0"
    assert await reason.inner_text() == ""
    assert await page.locator("#status-message.error").count() == 0
    seen.assert_inert()
    await page.context.close()

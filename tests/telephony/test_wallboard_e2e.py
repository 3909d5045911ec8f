"""End to end: sipp calls flow through the real Asterisk while a supervisor watches the
wallboard in headless Chromium. A waiting caller appears with a growing wait and vanishes when
they hang up (abandoned counts up), agent states follow an answered call, the figures equal
Asterisk's QueueSummary, and a pause made on the page shows in Asterisk's QueueStatus."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.models import Role
from tests.browser import PageWatch
from tests.browser import browser as browser  # the fixture
from tests.telephony.conftest import OUR_NUMBER, Ami, Pbx
from tests.telephony.product import add_staff, running_product, signed_in

pytestmark = pytest.mark.asterisk
AGENTS = ("PJSIP/1001", "PJSIP/1002")


@pytest.fixture
async def base(
    database_url: str, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, tmp_path: Path
) -> AsyncIterator[str]:
    await add_staff(sessions, "sveta", Role.SUPERVISOR)
    await add_staff(sessions, "anna", Role.AGENT, "PJSIP/1001")
    await add_staff(sessions, "boris", Role.AGENT, "PJSIP/1002")
    async with running_product(database_url, pbx, tmp_path) as url:
        yield url


async def pause(ami: Ami, interface: str, paused: bool, reason: str = "") -> None:
    action = {"Action": "QueuePause", "Queue": "support", "Interface": interface}
    action |= {"Paused": "true" if paused else "false", "Reason": reason}
    response = await ami.client.send_action(action)
    assert response.ok, response.headers


async def summary(ami: Ami) -> dict[str, int]:
    response = await ami.client.send_action({"Action": "QueueSummary", "Queue": "support"})
    [event] = [e for e in response.events if e.get("Event") == "QueueSummary"]
    return {key: int(event[key]) for key in ("Callers", "LoggedIn", "Available")}


async def member(ami: Ami, interface: str) -> dict[str, str]:
    response = await ami.client.send_action(
        {"Action": "QueueStatus", "Queue": "support", "Member": interface}
    )
    [found] = [e for e in response.events if e.get("Event") == "QueueMember"]
    return found


async def shown(row: Locator) -> dict[str, int]:
    cells = {"Callers": ".q-waiting", "LoggedIn": ".q-logged-in", "Available": ".q-available"}
    return {key: int(await row.locator(css).inner_text()) for key, css in cells.items()}


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


async def agrees_with_asterisk(ami: Ami, row: Locator) -> dict[str, int]:
    """The page shows what QueueSummary says, within a push (both are read afresh each try)."""
    seen: list[tuple[dict[str, int], dict[str, int]]] = []

    async def same() -> bool:
        truth, page = await summary(ami), await shown(row)
        seen.append((truth, page))
        return truth == page

    try:
        await until(same, 3.0)
    except TimeoutError:
        pytest.fail(f"wallboard disagrees with QueueSummary (asterisk, page): {seen[-3:]}")
    return seen[-1][0]


async def seconds(cell: Locator) -> int:
    minutes, _, secs = (await cell.inner_text()).partition(":")
    return int(minutes) * 60 + int(secs)


async def supervisor_page(browser: Browser, base: str) -> tuple[Page, PageWatch]:
    page, seen = await signed_in(browser, base, "sveta", "/supervisor")
    await page.wait_for_selector("#wallboard[data-state=open]")
    return page, seen


@pytest.fixture
async def agents_restored(ami: Ami) -> AsyncIterator[None]:
    """Leave both agents unpaused for the tests that follow."""
    yield
    for interface in AGENTS:
        await pause(ami, interface, False)


async def test_the_wallboard_follows_calls_through_asterisk(
    base: str, browser: Browser, pbx: Pbx, ami: Ami, start_sipp, agents_restored
) -> None:
    for interface in AGENTS:
        await pause(ami, interface, True, "перерыв")
    page, seen = await supervisor_page(browser, base)
    support = page.locator("#wb-queues tr[data-queue=support]")
    anna = page.locator("#wb-agents tr[data-interface='PJSIP/1001']")
    await until(_text(anna.locator(".a-state"), "на паузе — перерыв"))
    assert await agrees_with_asterisk(ami, support) == {"Callers": 0, "LoggedIn": 2, "Available": 0}
    abandoned = int(await support.locator(".q-abandoned").inner_text())

    # Nobody available: the caller waits, visibly counting up, then gives up after 3 s.
    trunk = f"127.0.0.1:{pbx.process.sip_port}"
    caller = await start_sipp(
        "customer_abandon.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, trunk
    )
    waiting = page.locator("#wb-callers tbody tr")
    await waiting.wait_for()
    assert "Иван Петров · +79161234567" in await waiting.locator(".c-caller").inner_text()
    assert await agrees_with_asterisk(ami, support) == {"Callers": 1, "LoggedIn": 2, "Available": 0}
    first = await seconds(waiting.locator(".c-wait"))
    await until(_grown(waiting.locator(".c-wait"), first), 3.0)
    await waiting.wait_for(state="detached", timeout=10_000)
    code, report = await caller.finish()
    assert code == 0, report
    await until(_text(support.locator(".q-abandoned"), str(abandoned + 1)))
    assert await agrees_with_asterisk(ami, support) == {"Callers": 0, "LoggedIn": 2, "Available": 0}

    # The supervisor resumes Anna from the page; her phone rings, she answers, the call ends.
    await anna.locator("button.wb-resume").click()
    await until(_paused(ami, "PJSIP/1001", "0"))
    await until(_text(anna.locator(".a-state"), "свободен"))
    assert await agrees_with_asterisk(ami, support) == {"Callers": 0, "LoggedIn": 2, "Available": 1}
    handled = int(await anna.locator(".a-calls").inner_text())
    phone = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "1500")
    caller = await start_sipp(
        "customer_call.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, "-d", "5000", trunk
    )
    await until(_text(anna.locator(".a-state"), "звонит телефон"))
    await until(_text(anna.locator(".a-state"), "разговаривает"))
    assert await anna.locator(".a-call").inner_text() == "Иван Петров · +79161234567 (support)"
    assert await agrees_with_asterisk(ami, support) == {"Callers": 0, "LoggedIn": 2, "Available": 0}
    for process in (caller, phone):
        code, report = await process.finish()
        assert code == 0, report
    await until(_text(anna.locator(".a-state"), "свободен"))
    assert await anna.locator(".a-call").inner_text() == "—"
    assert int(await anna.locator(".a-calls").inner_text()) == handled + 1
    assert int(await support.locator(".q-answered").inner_text()) >= 1
    assert await agrees_with_asterisk(ami, support) == {"Callers": 0, "LoggedIn": 2, "Available": 1}

    # A pause with a reason, made on the page, is Asterisk's truth.
    await anna.locator("input.wb-reason").fill("Обучение")
    await anna.locator("button.wb-pause").click()
    await until(_paused(ami, "PJSIP/1001", "1"))
    assert (await member(ami, "PJSIP/1001"))["PausedReason"] == "Обучение"
    await until(_text(anna.locator(".a-state"), "на паузе — Обучение"))
    assert await agrees_with_asterisk(ami, support) == {"Callers": 0, "LoggedIn": 2, "Available": 0}
    assert await page.locator("#wb-error").is_hidden()
    seen.assert_inert()
    await page.context.close()


def _text(cell: Locator, expected: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await cell.inner_text() == expected

    return check


def _grown(cell: Locator, first: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await seconds(cell) > first

    return check


def _paused(ami: Ami, interface: str, paused: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await member(ami, interface))["Paused"] == paused

    return check

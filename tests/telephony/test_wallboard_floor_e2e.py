"""End to end, the rest of the floor on the wallboard of a real ``serve`` with the real
Asterisk, in headless Chromium: the omnichannel tiles read from the database, an agent in no queue
logged into one and out again from the page (offline there: her phone is not reachable), and the
answered and abandoned counters moving with Asterisk's own (QueueStatus' QueueParams)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telegram.models import CallbackRequest
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.models import Channel, Customer, Role, Ticket, utcnow
from tests.browser import browser as browser  # the fixture
from tests.telephony.conftest import OUR_NUMBER, Ami, Pbx
from tests.telephony.product import add_staff, running_product, signed_in
from tests.telephony.test_wallboard_e2e import _text, agrees_with_asterisk, pause, until

pytestmark = pytest.mark.asterisk
OFFLINE = "PJSIP/1004"  # an endpoint without a contact: Asterisk reports it unavailable


@pytest.fixture
async def base(
    database_url: str, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, tmp_path: Path
) -> AsyncIterator[str]:
    await add_staff(sessions, "sveta", Role.SUPERVISOR)
    await add_staff(sessions, "dana", Role.AGENT, OFFLINE)
    now = utcnow()
    async with sessions() as session, session.begin():
        ann, bob = Customer(display_name="Ann"), Customer(display_name="Bob")
        session.add_all([ann, bob])
        await session.flush()
        session.add_all(
            [
                Ticket(
                    customer_id=ann.id,
                    channel=Channel.TELEGRAM,
                    created_at=now - timedelta(hours=3),
                ),
                Ticket(
                    customer_id=bob.id,
                    channel=Channel.EMAIL,
                    created_at=now - timedelta(minutes=10),
                ),
                CallbackRequest(
                    customer_id=bob.id, phone="+79031112233", due_at=now - timedelta(minutes=1)
                ),
            ]
        )
    async with running_product(database_url, pbx, tmp_path) as url:
        yield url


@pytest.fixture
async def floor_restored(ami: Ami) -> AsyncIterator[None]:
    yield
    await ami.client.send_action(
        {"Action": "QueueRemove", "Queue": "support", "Interface": OFFLINE}
    )
    for interface in ("PJSIP/1001", "PJSIP/1002"):
        await pause(ami, interface, False)


async def queue_params(ami: Ami) -> dict[str, int]:
    response = await ami.client.send_action({"Action": "QueueStatus", "Queue": "support"})
    [params] = [e for e in response.events if e.get("Event") == "QueueParams"]
    return {key: int(params[key]) for key in ("Completed", "Abandoned")}


async def members(ami: Ami) -> set[str]:
    response = await ami.client.send_action({"Action": "QueueStatus", "Queue": "support"})
    return {e["Location"] for e in response.events if e.get("Event") == "QueueMember"}


async def number(cell: Locator) -> int:
    return int(await cell.inner_text())


async def test_tiles_offline_agents_and_counters_on_the_live_wallboard(
    base: str, browser: Browser, pbx: Pbx, ami: Ami, start_sipp, floor_restored
) -> None:
    page, seen = await signed_in(browser, base, "sveta", "/supervisor")
    await page.wait_for_selector("#wallboard[data-state=open]")

    # The tiles: what the database holds, read by the serve's backlog watch.
    tiles = page.locator("#wb-tiles")
    telegram = tiles.locator(".wb-tile[data-tile=telegram]")
    await until(_text(telegram.locator(".t-value"), "1"))
    assert (await telegram.locator(".t-detail").inner_text()).startswith("дольше всех: 3:00:")
    assert await tiles.locator(".wb-tile[data-tile=email] .t-value").inner_text() == "1"
    breaching = tiles.locator(".wb-tile[data-tile=breaching]")
    assert await breaching.locator(".t-value").inner_text() == "1"
    assert await breaching.get_attribute("class") == "wb-tile alarm"
    assert await tiles.locator(".wb-tile[data-tile=callbacks] .t-value").inner_text() == "1"
    assert await tiles.locator(".wb-tile[data-tile=repeat] .t-value").inner_text() == "—"

    # Dana is in no queue: listed so that she can be logged into one from the page. Her phone
    # is unreachable, so in the queue she is offline, and not counted as logged in.
    support = page.locator("#wb-queues tr[data-queue=support]")
    for interface in ("PJSIP/1001", "PJSIP/1002"):
        await pause(ami, interface, True, "перерыв")
    dana = page.locator(f"#wb-agents tr[data-interface='{OFFLINE}']")
    await until(_text(dana.locator(".a-state"), "не в очереди"))
    assert await dana.locator(".a-name").inner_text() == f"Dana\n{OFFLINE}"
    await dana.locator("select.wb-queue").select_option("support")
    await dana.locator("button.wb-login").click()
    await until(_member(ami, OFFLINE, True))
    await until(_text(dana.locator(".a-state"), "не в сети"))
    assert await dana.get_attribute("class") == "state-offline"
    assert await dana.locator(".a-queues").inner_text() == "support"
    assert await agrees_with_asterisk(ami, support) == {"Callers": 0, "LoggedIn": 2, "Available": 0}

    # Logged out from the page: gone from Asterisk's queue and from the queue on the page.
    await dana.locator("select.wb-queue").select_option("support")
    await dana.locator("button.wb-logout").click()
    await until(_member(ami, OFFLINE, False))
    await until(_text(dana.locator(".a-queues"), "—"))
    assert await dana.locator(".a-state").inner_text() == "не в сети"
    assert await page.locator("#wb-error").is_hidden()

    # A caller gives up: the page's counter moves with Asterisk's own.
    before, shown = await queue_params(ami), await number(support.locator(".q-abandoned"))
    trunk = f"127.0.0.1:{pbx.process.sip_port}"
    caller = await start_sipp(
        "customer_abandon.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, trunk
    )
    code, report = await caller.finish()
    assert code == 0, report
    await until(_text(support.locator(".q-abandoned"), str(shown + 1)))
    after = await queue_params(ami)
    assert after["Abandoned"] - before["Abandoned"] == 1
    assert after["Completed"] == before["Completed"]
    assert await page.locator("#wb-error").is_hidden()
    seen.assert_inert()
    await page.context.close()


def _member(ami: Ami, interface: str, member: bool) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (interface in await members(ami)) is member

    return check

"""The callback list in headless Chromium updates itself over the event stream: a callback
created elsewhere appears, the dialler claiming it shows it being dialled, and its end (failed
after a busy line, done after a talk) replaces the row; customer text stays inert.

The dialler is the real one over a fake live state, with the ARI application's part played on
the bus (progress of each click-to-call, held until the test lets it go on)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callback_watch import NewCallbacks
from callcenter.automation.callbacks import CallbackPolicy, request_callback
from callcenter.bus import Bus
from callcenter.channels.telephony.clicktocall import (
    ClickToCallProgress,
    ClickToCallRequested,
    State,
)
from callcenter.channels.telephony.dialler import CallbackDialler
from callcenter.channels.telephony.events import AgentState
from callcenter.channels.telephony.state import AgentSnapshot
from callcenter.config import Settings
from callcenter.db import unit_of_work
from callcenter.domain.customers import create_customer
from callcenter.health import HealthRegistry
from callcenter.web.app import create_app
from callcenter.web.streams import Hub
from callcenter.web.views.callbacks import push_callback_changes
from tests.browser import browser, browser_page  # noqa: F401  (fixtures)
from tests.web.conftest import SESSION_KEY, staff  # noqa: F401
from tests.web.test_xss import DANGEROUS, HOSTILE


class FreeAgent:
    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]:
        return [
            AgentSnapshot("PJSIP/1001", "Anna", AgentState.AVAILABLE, "", now, 120,
                          ("support",), (), "", "", None, None, 0)
        ]  # fmt: skip


@dataclass
class Asterisk:
    """Plays the ARI application: each request rings, then waits for ``go`` to end as told."""

    bus: Bus
    endings: list[tuple[State, str]]
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, request: ClickToCallRequested) -> None:
        def report(state: State, reason: str = "") -> None:
            self.bus.publish(
                ClickToCallProgress(
                    request.request_id, request.agent_endpoint, request.number, state, reason
                )
            )

        report(State.AGENT_RINGING)
        report(State.CUSTOMER_RINGING)
        await self.go.wait()
        self.go.clear()
        for state, reason in self.endings.pop(0):
            report(state, reason)


@dataclass
class Live:
    base: str
    bus: Bus
    asterisk: Asterisk
    watch: NewCallbacks
    dialler: CallbackDialler


@pytest.fixture
async def live(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    staff,  # noqa: F811
) -> AsyncIterator[Live]:
    settings = Settings(database_url=database_url, session_key=SESSION_KEY, data_dir=tmp_path)
    bus, hub = Bus(), Hub()
    app = create_app(settings, health=HealthRegistry(), hub=hub, bus=bus)
    unsubscribe = push_callback_changes(bus, hub)
    asterisk = Asterisk(bus, [])
    bus.subscribe(ClickToCallRequested, asterisk)
    policy = CallbackPolicy(max_attempts=1)
    dialler = CallbackDialler(sessions, bus, FreeAgent(), policy=policy)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url("/")).rstrip("/")
        yield Live(base, bus, asterisk, NewCallbacks(sessions, bus), dialler)
    finally:
        asterisk.go.set()
        await dialler.drain()
        unsubscribe()
        await server.close()


async def _callback(sessions: async_sessionmaker[AsyncSession], phone: str) -> int:
    async with unit_of_work(sessions) as session:
        customer = await create_customer(session, HOSTILE)
        row = await request_callback(
            session,
            customer_id=customer.id,
            ticket_id=None,
            phone=phone,
            channel="call",
            due_at=datetime.now(UTC) - timedelta(minutes=1),
            queue="support",
        )
        return row.id


async def _status(page: Page, callback_id: int, status: str) -> None:
    await page.wait_for_selector(
        f"#callbacks tr[data-callback='{callback_id}'][data-status={status}]"
    )


async def test_the_callback_list_follows_creation_claim_and_outcome_live(
    live: Live,
    browser_page,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    page, seen = browser_page
    await page.goto(live.base + "/login")
    await page.fill("input[name=username]", "anna")
    await page.fill("input[name=password]", "password-anna")
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await page.goto(live.base + "/callbacks")
    await page.wait_for_selector("#callbacks[data-state=open]")
    await live.watch.check()  # the newest callback so far (none)
    assert await page.locator("#callbacks td.empty").count() == 1

    busy = await _callback(sessions, "+79161234567")
    assert await live.watch.check()
    await _status(page, busy, "requested")
    row = page.locator(f"#callbacks tr[data-callback='{busy}']")
    assert (await row.inner_text()).startswith(HOSTILE[:60])  # shown as text
    assert await row.locator(".status").inner_text() == "ждёт"

    live.asterisk.endings = [
        [(State.FAILED, "customer: User busy")],
        [(State.CONNECTED, ""), (State.ENDED, "customer hung up")],
    ]
    assert await live.dialler.run_once() == 1
    await _status(page, busy, "assigned")
    assert await row.locator(".agent").inner_text() == "PJSIP/1001"
    live.asterisk.go.set()
    await _status(page, busy, "failed")
    assert await row.locator(".outcome").inner_text() == "занято customer: User busy"
    assert await row.locator(".attempts").inner_text() == "1"

    done = await _callback(sessions, "+79161234568")
    assert await live.watch.check()
    await _status(page, done, "requested")
    assert await live.dialler.run_once() == 1
    await _status(page, done, "assigned")
    live.asterisk.go.set()
    await _status(page, done, "done")
    assert await page.locator(DANGEROUS).count() == 0
    seen.assert_inert()
    assert seen.console_errors == []

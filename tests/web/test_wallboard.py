"""The supervisor's wallboard page in headless Chromium, fed by a wallboard over a fake live
state, and its agent controls over a recording fake of the telephony control."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.events import AgentState
from callcenter.channels.telephony.state import AgentSnapshot, QueueSnapshot, WaitingCaller
from callcenter.config import Settings
from callcenter.dashboard.control import ControlError, check_interface, check_reason
from callcenter.dashboard.wallboard import Wallboard
from callcenter.health import HealthRegistry
from callcenter.models import AuditLog
from callcenter.web.app import create_app
from callcenter.web.keys import CONTROL, WALLBOARD
from callcenter.web.streams import Hub
from tests.web.conftest import SESSION_KEY
from tests.web.helpers import Visitor
from tests.web.test_xss import DANGEROUS, HOSTILE

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def queue(**changes) -> QueueSnapshot:
    base = QueueSnapshot(
        name="support",
        callers=(),
        longest_wait_seconds=0,
        answered_today=4,
        abandoned_today=1,
        timeout_today=0,
        answered_within_service_level_today=4,
        service_level_seconds=20,
        abandoned_in_service_level=False,
        service_level=100.0,
        average_wait_seconds=7.4,
        average_talk_seconds=95.0,
        agents_logged_in=2,
        agents_available=1,
    )
    return replace(base, **changes)


def agent(interface: str, state: AgentState, **changes) -> AgentSnapshot:
    base = AgentSnapshot(
        interface=interface,
        name="Agent",
        state=state,
        reason="",
        since=NOW,
        seconds_in_state=65,
        queues=("sales", "support"),
        paused_queues=(),
        caller_number="",
        caller_name="",
        call_queue=None,
        linkedid=None,
        calls_today=3,
    )
    return replace(base, **changes)


@dataclass
class FakeState:
    queues: list[QueueSnapshot] = field(default_factory=lambda: [queue(), queue(name="sales")])
    agents: list[AgentSnapshot] = field(
        default_factory=lambda: [
            agent("PJSIP/1001", AgentState.AVAILABLE),
            agent("PJSIP/1002", AgentState.PAUSED, reason="обед", paused_queues=("support",)),
        ]
    )

    def queue_snapshots(self, now: datetime) -> list[QueueSnapshot]:
        return self.queues

    def agent_snapshots(self, now: datetime) -> list[AgentSnapshot]:
        return self.agents


@dataclass
class FakeControl:
    done: list[tuple] = field(default_factory=list)

    async def pause(self, interface: str, reason: str, queue: str | None = None) -> None:
        self.done.append(("pause", check_interface(interface), check_reason(reason), queue))

    async def resume(self, interface: str, queue: str | None = None) -> None:
        self.done.append(("resume", check_interface(interface), queue))

    async def log_in(self, interface: str, queue: str, name: str = "") -> None:
        self.done.append(("login", interface, queue))

    async def log_out(self, interface: str, queue: str) -> None:
        raise ControlError("Unable to remove interface: Not dynamic")


@dataclass
class Live:
    server: TestServer
    state: FakeState
    control: FakeControl
    wallboard: Wallboard

    @property
    def base(self) -> str:
        return str(self.server.make_url("/")).rstrip("/")


@pytest.fixture
async def live(database_url: str, tmp_path: Path, staff) -> AsyncIterator[Live]:
    settings = Settings(database_url=database_url, session_key=SESSION_KEY, data_dir=tmp_path)
    hub = Hub()
    app = create_app(settings, health=HealthRegistry(), hub=hub)
    state, control = FakeState(), FakeControl()
    app[WALLBOARD] = wallboard = Wallboard(state, hub.publish_to_role, now=lambda: NOW)
    app[CONTROL] = control
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Live(server, state, control, wallboard)
    finally:
        await server.close()


async def sign_in(page: Page, base: str, name: str) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", f"password-{name}")
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/supervisor")


async def test_the_wallboard_shows_pushed_figures_with_alarms_and_hostile_names_inert(
    live: Live, browser_page, sessions: async_sessionmaker[AsyncSession]
) -> None:
    page, seen = browser_page
    await sign_in(page, live.base, "sveta")
    await page.wait_for_selector("#wallboard[data-state=open]")

    support = page.locator("#wb-queues tr[data-queue=support]")
    assert await support.locator(".q-answered").inner_text() == "4"
    assert await support.locator(".q-sl").inner_text() == (
        "100 %\nответ за 20 с; брошенные не учитываются"
    )
    assert await support.locator(".q-avg-wait").inner_text() == "0:07"
    assert await support.locator(".q-avg-talk").inner_text() == "1:35"
    assert await page.locator("#wb-no-callers").is_visible()
    paused = page.locator("#wb-agents tr[data-interface='PJSIP/1002']")
    assert await paused.locator(".a-state").inner_text() == "на паузе — обед"
    assert await paused.locator(".a-name").inner_text() == "Boris\nPJSIP/1002"  # staff name
    assert await paused.locator(".a-queues").inner_text() == "sales, support (пауза)"
    assert await paused.locator(".a-since").inner_text() == "1:05"
    assert "Цель по уровню обслуживания — 80 %" in await page.locator("#wb-policy").inner_text()

    caller = WaitingCaller("1.7", "+79161234567", HOSTILE, 1, NOW - timedelta(seconds=75), 75)
    live.state.queues = [
        queue(callers=(caller,), longest_wait_seconds=75, service_level=62.5),
        queue(name="sales"),
    ]
    live.state.agents[0] = agent(
        "PJSIP/1001",
        AgentState.ON_CALL,
        caller_number="+79031112233",
        caller_name=HOSTILE,
        call_queue="support",
    )
    assert live.wallboard.publish() == 1  # the one supervisor tab
    row = page.locator("#wb-callers tr[data-linkedid='1.7']")
    await row.wait_for()
    assert await row.locator(".c-wait").inner_text() == "1:15"
    assert await row.get_attribute("class") == "wait-long"
    assert HOSTILE in await row.locator(".c-caller").inner_text()
    assert await support.get_attribute("class") == "sl-low"
    assert (await support.locator(".q-sl-value").inner_text()) == "62,5 %"
    assert "wait-long" in (await support.locator(".q-longest").get_attribute("class") or "")
    talking = page.locator("#wb-agents tr[data-interface='PJSIP/1001']")
    assert await talking.get_attribute("class") == "state-on_call"
    assert HOSTILE in await talking.locator(".a-call").inner_text()
    assert await page.locator(DANGEROUS).count() == 0
    seen.assert_inert()

    live.state.queues = [queue(), queue(name="sales")]
    live.wallboard.publish()
    await row.wait_for(state="detached")
    assert await page.locator("#wb-no-callers").is_visible()

    # Control: pause with a reason typed into the row, log in to a chosen queue, and a refusal.
    await talking.locator("input.wb-reason").fill("Обучение")
    await talking.locator("button.wb-pause").click()
    await talking.locator("select.wb-queue").select_option("sales")
    await talking.locator("button.wb-login").click()
    await talking.locator("button.wb-logout").click()
    error = page.locator("#wb-error")
    await error.wait_for()
    assert await error.inner_text() == "Asterisk отказал: Unable to remove interface: Not dynamic"
    assert live.control.done == [
        ("pause", "PJSIP/1001", "Обучение", None),
        ("login", "PJSIP/1001", "sales"),
    ]
    async with sessions() as db:
        entries = list(await db.scalars(select(AuditLog).where(AuditLog.target_type == "agent")))
    assert [(e.action, e.actor, e.target_id, e.details) for e in entries] == [
        ("agent.pause", "sveta", "PJSIP/1001", {"reason": "Обучение"}),
        ("agent.login", "sveta", "PJSIP/1001", {"queue": "sales"}),
    ]
    seen.assert_inert()


async def test_only_supervisors_control_agents_and_bad_input_is_refused(live: Live) -> None:
    anna, sveta = Visitor(live.server.make_url("/")), Visitor(live.server.make_url("/"))
    try:
        assert (await anna.login("anna")).status == 303
        refused = await anna.post_form("/supervisor/agents/pause", {"interface": "PJSIP/1002"})
        assert refused.status == 403
        assert (await sveta.login("sveta")).status == 303
        no_csrf = await sveta.post("/supervisor/agents/resume", data={"interface": "PJSIP/1002"})
        assert no_csrf.status == 403
        bad = await sveta.post_form(
            "/supervisor/agents/pause", {"interface": "PJSIP/1002\r\nAction: Logoff"}
        )
        assert bad.status == 400
        assert (await bad.json())["error"].startswith("Неверный запрос: not an agent interface")
        unknown = await sveta.post_form("/supervisor/agents/hangup", {"interface": "PJSIP/1002"})
        assert unknown.status == 404
        no_queue = await sveta.post_form("/supervisor/agents/login", {"interface": "PJSIP/1002"})
        assert no_queue.status == 400
        done = await sveta.post_form(
            "/supervisor/agents/resume", {"interface": "PJSIP/1002", "queue": "support"}
        )
        assert (done.status, await done.json()) == (200, {"ok": True})
        assert live.control.done == [("resume", "PJSIP/1002", "support")]
    finally:
        await anna.close()
        await sveta.close()


async def test_without_telephony_the_page_says_so_and_control_is_unavailable(signed_in) -> None:
    sveta = await signed_in("sveta")
    page = await (await sveta.get("/supervisor")).text()
    assert "Телефония не подключена" in page and "wallboard.js" not in page
    answer = await sveta.post_form("/supervisor/agents/resume", {"interface": "PJSIP/1001"})
    assert answer.status == 503

"""The agent's telephony controls on /agent: own status over a fake telephony control and live
state, wrap-ups that reach the automation's summary email, click-to-call and recordings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.defaults import install_default_rules
from callcenter.automation.engine import Engine
from callcenter.automation.events import WrapUpSaved
from callcenter.bus import Bus
from callcenter.channels.telephony.clicktocall import ClickToCallRequested
from callcenter.config import Settings
from callcenter.dashboard.dialer import BusClickToCall
from callcenter.dashboard.wallboard import Wallboard
from callcenter.health import HealthRegistry
from callcenter.models import AuditLog, Call, CallOutcome, Ticket, TicketStatus, User
from callcenter.web.app import create_app
from callcenter.web.keys import CLICK_TO_CALL, CONTROL, SETTINGS, WALLBOARD
from callcenter.web.streams import Hub
from callcenter.workspace_models import WrapUp
from tests.automation.helpers import config, make_call, make_customer, outbox_rows
from tests.web.conftest import SESSION_KEY
from tests.web.helpers import HTML, Visitor
from tests.web.test_wallboard import NOW, FakeControl, FakeState
from tests.web.test_xss import DANGEROUS, HOSTILE

JSON = {"Accept": "application/json"}


@dataclass
class Desk:
    server: TestServer
    control: FakeControl
    bus: Bus
    published: list[object] = field(default_factory=list)


@pytest.fixture
async def desk(database_url: str, tmp_path: Path, staff) -> AsyncIterator[Desk]:
    settings = Settings(database_url=database_url, session_key=SESSION_KEY, data_dir=tmp_path)
    hub, bus = Hub(), Bus()
    app = create_app(settings, health=HealthRegistry(), hub=hub, bus=bus)
    control = FakeControl()
    app[WALLBOARD] = Wallboard(FakeState(), hub.publish_to_role, now=lambda: NOW)
    app[CONTROL] = control
    app[CLICK_TO_CALL] = BusClickToCall(bus)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    desk = Desk(server, control, bus)

    async def keep(event: object) -> None:
        desk.published.append(event)

    for kind in (WrapUpSaved, ClickToCallRequested):
        bus.subscribe(kind, keep)
    try:
        yield desk
    finally:
        await server.close()


@pytest.fixture
async def sign_in(desk: Desk) -> AsyncIterator[Callable[[str], Awaitable[Visitor]]]:
    made: list[Visitor] = []

    async def make(name: str) -> Visitor:
        made.append(Visitor(desk.server.make_url("/")))
        assert (await made[-1].login(name)).status == 303
        return made[-1]

    yield make
    for one in made:
        await one.close()


async def answered_call(
    sessions: async_sessionmaker[AsyncSession], agent: User, recording: str | None = None
) -> tuple[int, int]:
    customer = await make_customer(
        sessions, "Мария", email="maria@example.ru", phone="+79161234567"
    )
    call, ticket = await make_call(sessions, customer, outcome=CallOutcome.ANSWERED)
    async with sessions() as db, db.begin():
        row = await db.get(Call, call)
        row.agent_id, row.recording_path = agent.id, recording
    assert ticket is not None
    return call, ticket


async def test_the_agent_sees_asterisks_state_and_changes_only_their_own(
    desk: Desk, sign_in, sessions: async_sessionmaker[AsyncSession]
) -> None:
    boris = await sign_in("boris")
    status = await (await boris.get("/agent/status", headers=JSON)).json()
    assert (status["state"], status["reason"], status["paused_queues"]) == (
        "paused",
        "обед",
        ["support"],
    )
    page = await (await boris.get("/agent", headers=HTML)).text()
    assert '<span id="status-state">на паузе</span>' in page
    assert 'value="sales" checked' in page

    anna = await sign_in("anna")
    # The interface field is ignored: anna acts on her own endpoint only.
    answer = await anna.post_form(
        "/agent/status/pause", {"reason": "Обучение", "interface": "PJSIP/1002"}
    )
    assert answer.status == 200, await answer.text()
    assert (await anna.post_form("/agent/status/login", {"queue": "sales"})).status == 200
    assert (await anna.post_form("/agent/status/resume", {})).status == 200
    refused = await anna.post_form("/agent/status/logout", {"queue": "support"})
    assert refused.status == 502
    assert "Not dynamic" in (await refused.json())["error"]
    assert desk.control.done == [
        ("pause", "PJSIP/1001", "Обучение", None),
        ("login", "PJSIP/1001", "sales"),
        ("resume", "PJSIP/1001", None),
    ]
    bad = await anna.post_form("/agent/status/pause", {"reason": "a\nb"})
    assert bad.status == 400
    async with sessions() as db:
        chosen = select(AuditLog).where(AuditLog.action.like("agent.%"))
        audit = list(await db.scalars(chosen.order_by(AuditLog.id)))
    assert [(a.action, a.target_id, a.details) for a in audit] == [
        ("agent.pause", "PJSIP/1001", {"reason": "Обучение"}),
        ("agent.login", "PJSIP/1001", {"queue": "sales"}),
        ("agent.resume", "PJSIP/1001", {}),
    ]

    sveta = await sign_in("sveta")  # no SIP endpoint of her own
    answer = await sveta.post_form("/agent/status/pause", {"reason": "x"})
    assert answer.status == 400
    assert "нет SIP-телефона" in (await answer.json())["error"]
    assert len(desk.control.done) == 3


async def test_status_changes_without_the_csrf_token_are_refused(desk: Desk, sign_in) -> None:
    anna = await sign_in("anna")
    answer = await anna.post("/agent/status/pause", data={"reason": "Обед"})
    assert answer.status == 403
    wrapup = await anna.post("/calls/1/wrapup", data={"disposition": "Жалоба"})
    assert wrapup.status == 403
    assert desk.control.done == []


async def test_a_wrap_up_feeds_the_summary_email(
    desk: Desk, sign_in, sessions: async_sessionmaker[AsyncSession], staff: dict[str, User]
) -> None:
    async with sessions() as db, db.begin():
        await install_default_rules(db)
    Engine(sessions, config()).subscribe(desk.bus)
    call, ticket = await answered_call(sessions, staff["anna"])
    anna, boris = await sign_in("anna"), await sign_in("boris")

    page = await (await anna.get("/agent", headers=HTML)).text()
    assert f'data-action="/calls/{call}/wrapup"' in page
    assert "Вопрос решён" in page  # the default dispositions
    assert f"/calls/{call}/wrapup" not in await (await boris.get("/agent", headers=HTML)).text()

    form = {"disposition": "Вопрос решён", "summary": "Курьер приедет завтра.", "ticket_status": ""}
    assert (await boris.post_form(f"/calls/{call}/wrapup", form)).status == 404
    bad = await anna.post_form(f"/calls/{call}/wrapup", {**form, "disposition": "выдумка"})
    assert bad.status == 400
    await desk.bus.drain()
    assert desk.published == []

    answer = await anna.post_form(f"/calls/{call}/wrapup", {**form, "ticket_status": "solved"})
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["message"] == "Итоги сохранены."
    await desk.bus.drain()
    assert desk.published == [
        WrapUpSaved(call, ticket, staff["anna"].id, "Вопрос решён", "Курьер приедет завтра.")
    ]
    emails = [r for r in await outbox_rows(sessions) if r.channel == "email"]
    [row] = [r for r in emails if r.payload["subject"].startswith("Итоги звонка")]
    assert row.recipient == "maria@example.ru"
    assert "Курьер приедет завтра." in row.payload["text"]
    async with sessions() as db:
        [wrapup] = list(await db.scalars(select(WrapUp)))
        assert (wrapup.agent_id, wrapup.disposition) == (staff["anna"].id, "Вопрос решён")
        assert (await db.get(Ticket, ticket)).status is TicketStatus.SOLVED
    page = await (await anna.get("/agent", headers=HTML)).text()
    assert f"/calls/{call}/wrapup" not in page  # done: no longer offered

    sveta = await sign_in("sveta")  # supervisors may correct a wrap-up
    assert (await sveta.post_form(f"/calls/{call}/wrapup", form)).status == 200


async def test_recordings_are_served_to_the_agent_and_only_from_the_recordings_folder(
    desk: Desk, sign_in, sessions: async_sessionmaker[AsyncSession], staff: dict[str, User]
) -> None:
    settings_dir = desk.server.app[SETTINGS].data_dir
    folder = settings_dir / "recordings"
    folder.mkdir(exist_ok=True)
    (folder / "call-1.wav").write_bytes(b"RIFF-test-audio")
    (settings_dir / "secret.txt").write_text("not a recording")
    call, _ = await answered_call(sessions, staff["anna"], recording="call-1.wav")
    anna, boris, sveta = await sign_in("anna"), await sign_in("boris"), await sign_in("sveta")

    page = await (await anna.get("/agent", headers=HTML)).text()
    assert f'href="/calls/{call}/recording"' in page
    got = await anna.get(f"/calls/{call}/recording")
    assert (got.status, await got.read()) == (200, b"RIFF-test-audio")
    assert (await sveta.get(f"/calls/{call}/recording")).status == 200
    assert (await boris.get(f"/calls/{call}/recording")).status == 404

    for outside in ("../secret.txt", str(settings_dir / "secret.txt")):
        async with sessions() as db, db.begin():
            (await db.get(Call, call)).recording_path = outside
        assert (await anna.get(f"/calls/{call}/recording")).status == 404


async def test_click_to_call_rings_the_agents_own_phone_then_the_customer(
    desk: Desk, sign_in, sessions: async_sessionmaker[AsyncSession], staff: dict[str, User]
) -> None:
    customer = await make_customer(sessions, "Пётр", phone="+79161234567")
    nophone = await make_customer(sessions, "Без телефона", email="x@example.ru")
    anna = await sign_in("anna")
    answer = await anna.post_form(f"/customers/{customer}/call", {"number": "+70000000000"})
    assert answer.status == 200, await answer.text()
    await desk.bus.drain()
    [request] = desk.published
    assert isinstance(request, ClickToCallRequested)
    # Only the customer's own number is dialled, whatever the browser sends.
    assert (request.agent_endpoint, request.number, request.requested_by) == (
        "PJSIP/1001",
        "+79161234567",
        staff["anna"].id,
    )
    assert (await answer.json())["request_id"] == request.request_id

    no_phone = await anna.post_form(f"/customers/{nophone}/call", {})
    assert no_phone.status == 400
    sveta = await sign_in("sveta")
    assert (await sveta.post_form(f"/customers/{customer}/call", {})).status == 400
    assert len(desk.published) == 1


async def test_without_telephony_the_page_says_so_and_actions_are_refused_clearly(
    signed_in, sessions: async_sessionmaker[AsyncSession]
) -> None:
    customer = await make_customer(sessions, "Пётр", phone="+79161234567")
    anna = await signed_in("anna")  # the plain app: no AMI, no ARI
    page = await (await anna.get("/agent", headers=HTML)).text()
    assert 'id="status-off"' in page
    off = await anna.post_form(f"/customers/{customer}/call", {})
    assert off.status == 503
    assert "ARI не настроен" in (await off.json())["error"]
    paused = await anna.post_form("/agent/status/pause", {"reason": "Обед"})
    assert paused.status == 503
    assert "Телефония не подключена" in (await paused.json())["error"]


async def _anna_in_the_browser(desk: Desk, page: Page) -> str:
    """Sign Anna in (she lands on /agent); the server's base URL."""
    base = str(desk.server.make_url("/")).rstrip("/")
    await page.goto(base + "/login")
    await page.fill("input[name=username]", "anna")
    await page.fill("input[name=password]", "password-anna")
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/agent")
    return base


async def test_the_wrap_up_form_and_status_bar_work_in_the_browser(
    desk: Desk, browser_page, sessions: async_sessionmaker[AsyncSession], staff: dict[str, User]
) -> None:
    call, _ = await answered_call(sessions, staff["anna"])
    page, seen = browser_page
    await _anna_in_the_browser(desk, page)
    assert await page.locator("#status-state").inner_text() == "свободен"

    await page.select_option("#pause-reason", "Обед")
    await page.click("#status-pause-button")
    async with asyncio.timeout(10):
        while not desk.control.done:
            await asyncio.sleep(0.05)
    assert desk.control.done == [("pause", "PJSIP/1001", "Обед", None)]

    form = page.locator(f"form.wrapup[data-interaction='{call}']")
    await form.locator("select[name=disposition]").select_option("Жалоба")
    await form.locator("textarea[name=summary]").fill(HOSTILE)
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector(f"form.wrapup[data-interaction='{call}'][data-saved=true]")
    assert await form.locator(".message").inner_text() == "Итоги сохранены."
    await desk.bus.drain()
    [event] = desk.published
    assert (event.disposition, event.summary) == ("Жалоба", HOSTILE.strip())
    assert await page.locator(DANGEROUS).count() == 0
    seen.assert_inert()


async def test_a_call_from_a_tickets_thread_carries_that_ticket_and_only_the_customers(
    desk: Desk, sign_in, sessions: async_sessionmaker[AsyncSession]
) -> None:
    customer = await make_customer(sessions, "Пётр", phone="+79161234567")
    other = await make_customer(sessions, "Ольга", phone="+79161112233")
    _, ticket = await make_call(sessions, customer, outcome=CallOutcome.ANSWERED)
    _, foreign = await make_call(
        sessions, other, outcome=CallOutcome.ANSWERED, caller="+79161112233"
    )
    anna = await sign_in("anna")
    for sent in (str(ticket), str(foreign), "12abc", ""):
        answer = await anna.post_form(f"/customers/{customer}/call", {"ticket_id": sent})
        assert answer.status == 200, await answer.text()
    await desk.bus.drain()
    # Another customer's ticket (or nonsense) is ignored: the call is still placed, unlinked.
    assert [(r.number, r.ticket_id) for r in desk.published] == [
        ("+79161234567", ticket),
        ("+79161234567", None),
        ("+79161234567", None),
        ("+79161234567", None),
    ]


async def test_the_call_button_of_a_tickets_thread_works_in_the_browser(
    desk: Desk, browser_page, sessions: async_sessionmaker[AsyncSession]
) -> None:
    customer = await make_customer(sessions, "Пётр", phone="+79161234567")
    _, ticket = await make_call(sessions, customer, outcome=CallOutcome.ANSWERED)
    page, seen = browser_page
    base = await _anna_in_the_browser(desk, page)

    await page.goto(f"{base}/customers/{customer}")
    form = page.locator(f"#ticket-{ticket} form.ticket-call")
    await form.locator("button").click()
    await page.wait_for_function(
        "selector => document.querySelector(selector).textContent !== ''",
        arg=f"#ticket-{ticket} form.ticket-call output",
    )
    assert await form.locator("output").inner_text() == (
        "Звоним: сначала зазвонит ваш телефон, затем клиент."
    )
    assert page.url == f"{base}/customers/{customer}"  # answered in place, no JSON page
    await desk.bus.drain()
    [request] = desk.published
    assert (request.agent_endpoint, request.number, request.ticket_id) == (
        "PJSIP/1001",
        "+79161234567",
        ticket,
    )
    seen.assert_inert()

"""The callbacks page: agents and supervisors see what the dialler has to call, is calling and
has called, with attempts, agent and outcome; customer text is shown inert."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import (
    CallbackPolicy,
    DialOutcome,
    PlacedCall,
    claim_callback,
    finish_attempt,
    request_callback,
)
from callcenter.channels.telephony.state import LiveState
from callcenter.config import Settings
from callcenter.dashboard.wallboard import Wallboard
from callcenter.db import unit_of_work
from callcenter.domain.customers import create_customer
from callcenter.health import HealthRegistry
from callcenter.models import CallOutcome
from callcenter.web.app import create_app
from callcenter.web.i18n import catalog
from callcenter.web.keys import WALLBOARD
from callcenter.web.streams import Hub
from tests.web.conftest import SESSION_KEY, server, signed_in, staff, visitor  # noqa: F401
from tests.web.helpers import HTML, Visitor

SignIn = Callable[[str], Awaitable[Visitor]]
HOSTILE = '<img src=x onerror="alert(1)">'


async def test_agents_and_supervisors_see_callbacks_with_their_dialling_state(
    signed_in: SignIn,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    async with unit_of_work(sessions) as session:
        customer = await create_customer(session, HOSTILE)
        for phone in ("+79161234567", "+79161234568"):
            await request_callback(
                session,
                customer_id=customer.id,
                ticket_id=None,
                phone=phone,
                channel="call",
                due_at=now - timedelta(minutes=5),
                queue="support",
            )
    async with unit_of_work(sessions) as session:
        tried = await claim_callback(
            session, agent_endpoint="PJSIP/1001", queues={"support"}, now=now
        )
        await finish_attempt(
            session,
            tried.id,
            DialOutcome.NO_ANSWER,
            reason="customer: no answer",
            now=now,
            policy=CallbackPolicy(max_attempts=1),
            call=PlacedCall(f"callback-{tried.id}-1", now, None, now + timedelta(seconds=45)),
        )
    for name in ("anna", "sveta"):
        who = await signed_in(name)
        response = await who.get("/callbacks", headers=HTML)
        assert response.status == 200
        page = await response.text()
        assert f'data-callback="{tried.id}" data-status="failed"' in page
        assert "не дозвонились" in page and "PJSIP/1001" in page
        assert 'клиент не ответил <small class="reason">customer: no answer</small>' in page
        assert 'data-status="requested"' in page and "ждёт" in page
        assert HOSTILE not in page and "&lt;img src=x" in page
        # The unanswered ring is in the customer's history.
        history = await (await who.get(f"/customers/{customer.id}", headers=HTML)).text()
        assert "Обратный звонок на +7916" in history and ": не ответил" in history
        assert '<p class="call">не ответил · support' in history  # its outcome, not "missed"


async def test_the_supervisor_pages_callback_tile_leads_to_the_list(
    database_url: str,
    staff,  # noqa: F811
    tmp_path,
) -> None:
    settings = Settings(database_url=database_url, session_key=SESSION_KEY, data_dir=tmp_path)
    hub = Hub()
    app = create_app(settings, health=HealthRegistry(), hub=hub)
    app[WALLBOARD] = Wallboard(LiveState(), hub.publish_to_role)  # telephony on
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    supervisor = Visitor(test_server.make_url("/"))
    try:
        assert (await supervisor.login("sveta")).status == 303
        page = await (await supervisor.get("/supervisor", headers=HTML)).text()
    finally:
        await supervisor.close()
        await test_server.close()
    tile = page[page.index('data-tile="callbacks"') :]
    assert tile[: tile.index("</div>")].count('href="/callbacks"') == 1


def test_every_call_outcome_has_a_russian_and_an_english_label() -> None:
    labels = {lang: catalog(lang) for lang in ("ru", "en")}
    for outcome in CallOutcome:
        ru, en = (labels[lang].get(f"outcome.{outcome.value}") for lang in ("ru", "en"))
        assert ru and en and ru != en, outcome
    assert labels["en"]["outcome.no_answer"] == "no answer"
    for attempt in DialOutcome:  # how a callback's last attempt ended, on /callbacks
        ru, en = (labels[lang].get(f"callbacks.outcome_{attempt.value}") for lang in ("ru", "en"))
        assert ru and en and ru != en, attempt

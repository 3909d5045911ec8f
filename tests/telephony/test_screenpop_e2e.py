"""End to end: a sipp customer calls the real Asterisk, the agent's sipp phone rings, and the
agent's browser (headless Chromium) shows the card with the earlier Telegram message and email
while the phone is still ringing. Another agent's browser never gets it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.domain.customers import attach_identity
from callcenter.domain.inbox import InboundMessage, ingest
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    IdentityKind,
    Interaction,
    Role,
    ScreenPop,
)
from tests.browser import PageWatch
from tests.browser import browser as browser  # the fixture
from tests.telephony.conftest import CUSTOMER_NUMBER, OUR_NUMBER, Ami, Pbx
from tests.telephony.product import add_staff, running_product, signed_in

pytestmark = pytest.mark.asterisk
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
UNKNOWN_NUMBER = "+79031112233"


@dataclass
class Running:
    base: str
    sessions: async_sessionmaker[AsyncSession]
    customer_id: int
    history: list[int]


async def seed(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, list[int]]:
    await add_staff(sessions, "anna", Role.AGENT, "PJSIP/1001")
    await add_staff(sessions, "boris", Role.AGENT, "PJSIP/1002")
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        telegram = await ingest(
            session,
            InboundMessage(
                channel=Channel.TELEGRAM,
                external_id="7001:1",
                identity_kind=IdentityKind.TELEGRAM,
                identity_value="7001",
                display_name="Иван Петров",
                occurred_at=now - timedelta(hours=2),
                text="Мой заказ №12345 не пришёл",
            ),
        )
        await attach_identity(session, telegram.customer, IdentityKind.PHONE, CUSTOMER_NUMBER)
        await attach_identity(session, telegram.customer, IdentityKind.EMAIL, "ivan@mail.ru")
        email = await ingest(
            session,
            InboundMessage(
                channel=Channel.EMAIL,
                external_id="order-12345@mail.ru",
                identity_kind=IdentityKind.EMAIL,
                identity_value="ivan@mail.ru",
                occurred_at=now - timedelta(hours=1),
                subject="Заказ 12345",
                text="Пишу второй раз: где заказ 12345?",
            ),
        )
        return telegram.customer.id, [telegram.interaction.id, email.interaction.id]


@pytest.fixture
async def running(
    database_url: str, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, tmp_path: Path
) -> AsyncIterator[Running]:
    customer_id, history = await seed(sessions)
    async with running_product(database_url, pbx, tmp_path) as base:
        yield Running(base, sessions, customer_id, history)


async def agent_page(browser: Browser, base: str, username: str) -> tuple[Page, PageWatch]:
    page, seen = await signed_in(browser, base, username, "/agent")
    await page.wait_for_selector("#pops[data-state=open]")
    return page, seen


async def only_1001_available(ami: Ami) -> None:
    for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
        response = await ami.client.send_action(
            {"Action": "QueuePause", "Queue": "support", "Interface": interface, "Paused": paused}
        )
        assert response.ok, response.headers


async def test_the_agent_sees_the_callers_history_while_the_phone_rings(
    running: Running, browser: Browser, pbx: Pbx, ami: Ami, start_sipp
) -> None:
    await only_1001_available(ami)
    anna, anna_watch = await agent_page(browser, running.base, "anna")
    boris, _ = await agent_page(browser, running.base, "boris")
    since = ami.log.mark()

    # The dialplan answers at once, so the caller's -d counts from then: it must outlast the
    # agent's 3 s of ringing.
    phone = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "3000")
    caller = await start_sipp(
        "customer_call.xml", free_port(socket.SOCK_DGRAM), "-s", OUR_NUMBER, "-d", "6000",
        f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip

    card = anna.locator("article.screenpop")
    await card.wait_for()
    [called] = await ami.log.wait_for(since, "AgentCalled", Interface="PJSIP/1001")
    linkedid = called.headers["Linkedid"]
    assert ami.log.matching(since, "AgentConnect", Linkedid=linkedid) == [], (
        "the card must be on screen while the phone is still ringing"
    )
    text = await card.inner_text()
    assert "Иван Петров" in text
    assert "Мой заказ №12345 не пришёл" in text  # the Telegram message
    assert "Пишу второй раз: где заказ 12345?" in text  # the email
    assert "Вы писали нам на почту о заказе №12345" in text  # the suggested opening line
    assert "Повторное обращение по заказу №12345" in text
    assert "Язык: ru" in text and "Последний контакт:" in text and "ч назад" in text

    for process in (caller, phone):
        code, report = await process.finish()
        assert code == 0, report
    assert await boris.locator("article.screenpop").count() == 0
    anna_watch.assert_inert()

    async with asyncio.timeout(15):
        while True:
            async with running.sessions() as session:
                call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
                pop = await session.scalar(select(ScreenPop).where(ScreenPop.linkedid == linkedid))
            if call is not None and pop is not None:
                break
            await asyncio.sleep(0.2)
    assert call.outcome is CallOutcome.ANSWERED and call.agent_endpoint == "PJSIP/1001"
    async with running.sessions() as session:
        record = await session.get(Interaction, call.interaction_id)
    assert record.customer_id == running.customer_id
    assert pop.customer_id == running.customer_id and pop.delivered == 1
    assert set(running.history) <= set(pop.interaction_ids)


async def test_an_unknown_caller_with_a_hostile_name_gets_an_inert_unknown_card(
    running: Running, browser: Browser, pbx: Pbx, ami: Ami, start_sipp, tmp_path: Path
) -> None:
    await only_1001_available(ami)
    anna, anna_watch = await agent_page(browser, running.base, "anna")
    callers = tmp_path / "caller.csv"
    callers.write_text(f"SEQUENTIAL\n{UNKNOWN_NUMBER};{HOSTILE_NAME}\n")

    phone = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "1000")
    caller = await start_sipp(
        "customer_as.xml", free_port(socket.SOCK_DGRAM), "-inf", str(callers),
        "-s", OUR_NUMBER, "-d", "3000",
        f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip
    card = anna.locator("article.screenpop.unknown")
    await card.wait_for()
    text = await card.inner_text()
    assert "Неизвестный номер" in text and UNKNOWN_NUMBER in text
    assert await anna.locator("form.pop-create").count() == 1
    for process in (caller, phone):
        code, report = await process.finish()
        assert code == 0, report
    await asyncio.sleep(0.3)
    anna_watch.assert_inert()
    assert await anna.locator("article img").count() == 0

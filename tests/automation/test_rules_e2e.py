"""The default rules end to end through the real senders: a mail stored by the email ingestor
is acknowledged through SMTP (aiosmtpd); a Telegram message polled from the local Bot API server
and left unanswered for exactly two hours (a controlled clock) gets the apology by SMTP and the
"call me" offer through the Bot API, once, across an engine restart and two timer workers; an
agent's answer before then sends nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import email
from collections.abc import AsyncIterator
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.defaults import install_default_rules
from callcenter.automation.engine import Engine
from callcenter.automation.timers import TimerWorker
from callcenter.bus import Bus
from callcenter.channels.email.ingest import EmailIngestor
from callcenter.channels.email.smtp import SmtpSender
from callcenter.channels.telegram.worker import TelegramChannel
from callcenter.db import create_engine, session_factory
from callcenter.domain.tickets import record_reply
from callcenter.models import Channel, Direction, Interaction, utcnow
from callcenter.outbox import OutboxWorker, enqueue
from tests.automation.helpers import Clock, config, firing_log, make_customer
from tests.email import support
from tests.fakes.botapi import BotApiServer
from tests.services.smtp import SmtpServer, running_smtp
from tests.telegram.conftest import OPEN_HOURS, WEDNESDAY_NOON, make_settings

CHAT = 7001
CUSTOMER_EMAIL = "ivan@example.ru"


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    async with running_smtp() as server:
        yield server


@pytest.fixture
async def api() -> AsyncIterator[BotApiServer]:
    async with BotApiServer() as server:
        yield server


@pytest.fixture
async def rules_installed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await install_default_rules(session)


def _parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=default)


def _text(message: Message) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def _subject(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


async def test_an_email_request_is_acknowledged_in_russian_through_smtp(
    sessions: async_sessionmaker[AsyncSession],
    rules_installed: None,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    settings = support.settings(tmp_path, smtp=smtp)
    raw = support.mail(
        f"Иван Петров <{CUSTOMER_EMAIL}>",
        "Где мой заказ 12345?",
        "Здравствуйте! Заказ 12345 так и не пришёл.",
        message_id="order-12345@example.ru",
    )
    stored = await EmailIngestor(settings).store_batch(sessions, [(raw, "INBOX")])
    engine = Engine(sessions, config(), now=Clock())
    for event in stored.events:
        await engine.handle(event)
    outbox = OutboxWorker(sessions, [SmtpSender(settings, sessions)])
    assert await outbox.run_once() == 1

    (received,) = await smtp.wait_for(1)
    assert received.rcpt_tos == (CUSTOMER_EMAIL,)
    ack = _parse(received.content)
    assert "Мы получили ваш запрос" in _subject(ack)
    assert "Здравствуйте, Иван Петров!" in _text(ack)
    assert "Ответ пришлём в течение 2 часов." in _text(ack)
    assert ack["In-Reply-To"] == "<order-12345@example.ru>"
    assert "<order-12345@example.ru>" in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied"
    # Handled again (a redelivered event), nothing more is sent.
    for event in stored.events:
        await engine.handle(event)
    assert await outbox.run_once() == 0
    await asyncio.sleep(0.2)
    assert len(smtp.received) == 1


class Shop:
    """The Telegram channel on the local Bot API server, SMTP, and the automation engine with
    a clock the test moves."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        api: BotApiServer,
        smtp: SmtpServer,
        database_url: str,
        tmp_path: Path,
    ) -> None:
        self.sessions = sessions
        self.api = api
        self.smtp = smtp
        self.database_url = database_url
        self.clock = Clock(utcnow())  # the Bot API dates messages with the real time
        self.bus = Bus()
        self.settings = dataclasses.replace(
            make_settings(api, database_url, tmp_path),
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security="none",
            smtp_from=support.SHOP,
        )
        self.telegram = TelegramChannel(
            self.settings, sessions, self.bus, hours=OPEN_HOURS, outbox_idle=0.05, poll_timeout=0
        )
        self.telegram.processor.now = lambda: WEDNESDAY_NOON
        self.engine = Engine(sessions, config(), now=self.clock)
        self.unsubscribe = self.engine.subscribe(self.bus)
        # Rows the rules queue at the clock's time go out when the clock says so.
        self.telegram.outbox.now = self.clock
        self.mail = OutboxWorker(sessions, [SmtpSender(self.settings, sessions)], now=self.clock)

    async def customer_writes(self, text: str) -> Interaction:
        """The customer's message polled and stored; the bot's own answer sent."""
        self.api.push_message(CHAT, text)
        while await self.telegram.poller.run_once():
            pass
        await self.telegram.processor.drain()
        await self.bus.drain()
        self.clock.at = utcnow()
        await self.deliver()
        async with self.sessions() as session:
            anchor = await session.scalar(
                select(Interaction)
                .where(
                    Interaction.channel == Channel.TELEGRAM,
                    Interaction.direction == Direction.INBOUND,
                )
                .order_by(Interaction.id.desc())
            )
        assert anchor is not None and anchor.text == text
        return anchor

    async def deliver(self) -> None:
        """Every queued mail and Telegram message handed to SMTP and the Bot API."""
        while await self.mail.run_once() or await self.telegram.outbox.run_once():
            pass

    async def close(self) -> None:
        self.unsubscribe()
        await self.telegram.processor.drain()
        await self.bus.drain()
        await self.telegram.close()


@pytest.fixture
async def shop(
    sessions: async_sessionmaker[AsyncSession],
    rules_installed: None,
    api: BotApiServer,
    smtp: SmtpServer,
    database_url: str,
    tmp_path: Path,
) -> AsyncIterator[Shop]:
    await make_customer(sessions, "Иван Петров", email=CUSTOMER_EMAIL, telegram=CHAT)
    made = Shop(sessions, api, smtp, database_url, tmp_path)
    try:
        yield made
    finally:
        await made.close()


async def _timer_pass(database_url: str, clock: Clock, workers: int) -> int:
    """Restarted servers: fresh database engines and automation engines, ``workers`` timer
    workers racing for what is due; returns how many timers fired."""
    engines = [create_engine(database_url) for _ in range(workers)]
    try:
        racing = []
        for db in engines:
            sessions = session_factory(db)
            handlers = Engine(sessions, config(), now=clock).timer_handlers
            racing.append(TimerWorker(sessions, handlers, now=clock).run_once())
        return sum(await asyncio.gather(*racing))
    finally:
        for db in engines:
            await db.dispose()


def _offers(api: BotApiServer) -> list[str]:
    return [m.text or "" for m in api.sent if "позвоним" in (m.text or "")]


def _apologies(smtp: SmtpServer) -> list[Message]:
    found = [_parse(r.content) for r in smtp.received]
    return [m for m in found if "Извините за ожидание" in _subject(m)]


async def test_an_unanswered_telegram_message_gets_the_apology_and_the_offer_at_two_hours_once(
    shop: Shop, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    anchor = await shop.customer_writes("Хочу вернуть деньги за заказ №12346, он пришёл сломанным")
    sent_by_bot, mails = len(shop.api.sent), len(shop.smtp.received)
    due = anchor.occurred_at + timedelta(hours=2)

    shop.clock.at = due - timedelta(microseconds=1)
    assert await _timer_pass(database_url, shop.clock, workers=2) == 0
    await shop.deliver()
    assert (len(shop.api.sent), len(shop.smtp.received)) == (sent_by_bot, mails)

    shop.clock.at = due
    assert await _timer_pass(database_url, shop.clock, workers=2) == 1
    await shop.deliver()
    (offer,) = shop.api.sent[sent_by_bot:]
    assert offer.chat_id == CHAT
    assert (
        offer.text
        == "Извините, что ответ задерживается. Хотите, мы вам позвоним? Нажмите кнопку ниже."
    )
    [[button]] = offer.buttons
    assert button["text"] == "📞 Позвоните мне"
    await shop.smtp.wait_for(mails + 1)
    apology = _parse(shop.smtp.received[mails].content)
    assert shop.smtp.received[mails].rcpt_tos == (CUSTOMER_EMAIL,)
    assert _subject(apology).startswith("Извините за ожидание [#")
    assert "Простите, что мы до сих пор не ответили на ваше сообщение в Telegram." in _text(apology)
    assert apology["Auto-Submitted"] == "auto-replied"

    # Later passes, by restarted servers with two workers each, send nothing more.
    for hours in (1, 24):
        shop.clock.at = due + timedelta(hours=hours)
        assert await _timer_pass(database_url, shop.clock, workers=2) == 0
        await shop.deliver()
    await asyncio.sleep(0.2)
    assert len(_offers(shop.api)) == 1 and len(_apologies(shop.smtp)) == 1
    fired = [f for f in await firing_log(sessions) if f.trigger == "ticket_unanswered"]
    assert [(f.ticket_id, f.outcome) for f in fired] == [(anchor.ticket_id, "done")]


async def test_an_agent_answer_before_two_hours_sends_nothing(
    shop: Shop, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    anchor = await shop.customer_writes("Хочу вернуть деньги за заказ №12346, он пришёл сломанным")
    sent_by_bot, mails = len(shop.api.sent), len(shop.smtp.received)
    answered_at = anchor.occurred_at + timedelta(hours=1, minutes=59)
    shop.clock.at = answered_at
    async with sessions() as session, session.begin():
        reply, replied = await record_reply(
            session,
            anchor.ticket_id,
            channel=Channel.TELEGRAM,
            text="Оформили возврат, деньги придут за 3 дня.",
            at=answered_at,
        )
        enqueue(
            session,
            channel="telegram",
            recipient=str(CHAT),
            payload={"text": reply.text, "interaction_id": reply.id},
            ticket_id=anchor.ticket_id,
        )
    shop.bus.publish(replied)
    await shop.bus.drain()
    await shop.deliver()
    reply = shop.api.sent[sent_by_bot:]
    assert [m.text for m in reply] == ["Оформили возврат, деньги придут за 3 дня."]

    for at in (timedelta(hours=2), timedelta(days=1)):
        shop.clock.at = anchor.occurred_at + at
        assert await _timer_pass(database_url, shop.clock, workers=2) == 0
        await shop.deliver()
    await asyncio.sleep(0.2)
    assert _offers(shop.api) == [] and _apologies(shop.smtp) == []
    assert len(shop.smtp.received) == mails
    assert [f for f in await firing_log(sessions) if f.trigger == "ticket_unanswered"] == []

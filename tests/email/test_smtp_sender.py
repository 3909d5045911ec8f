"""Sending email outbox rows to a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import email
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.email.ingest import EmailIngestor
from callcenter.channels.email.smtp import SmtpSender
from callcenter.channels.email.threading import outbox_message_id
from callcenter.config import Settings
from callcenter.models import Identity, OutboxStatus, utcnow
from callcenter.outbox import OutboxWorker, enqueue
from tests.email import support
from tests.email.support import mail
from tests.services.dovecot import free_port
from tests.services.smtp import SmtpServer, running_smtp


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    async with running_smtp() as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.at = utcnow()

    def __call__(self) -> datetime:
        return self.at


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=default)  # type: ignore[return-value]


async def customer_ticket(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, raw: bytes
) -> int:
    result = await EmailIngestor(settings).store_batch(sessions, [(raw, "test")])
    [outcome] = result.outcomes
    assert outcome.status == "stored"
    return outcome.ticket_id


async def queue(sessions: async_sessionmaker[AsyncSession], recipient: str, **payload: Any) -> int:
    async with sessions() as session, session.begin():
        item = enqueue(
            session,
            channel="email",
            recipient=recipient,
            payload=payload,
            ticket_id=payload.get("ticket_id"),
        )
        await session.flush()
        return item.id


async def send_all(worker: OutboxWorker) -> None:
    while await worker.run_once():
        pass


async def test_an_agent_reply_is_threaded_tagged_and_laid_out(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, tmp_path: Path
) -> None:
    settings = support.settings(tmp_path, smtp=smtp)
    ticket_id = await customer_ticket(
        sessions,
        settings,
        mail(
            "Иван <ivan@example.ru>",
            "Где мой заказ 12345?",
            "Заказ не пришёл",
            message_id="q1@ex.ru",
            references=("older@ex.ru",),
        ),
    )
    row = await queue(
        sessions,
        "ivan@example.ru",
        to_name="Иван Петров",
        text="Здравствуйте!\n\nЗаказ <b>12345</b> передан курьеру.\nОжидайте звонка.",
        ticket_id=ticket_id,
    )
    await send_all(OutboxWorker(sessions, [SmtpSender(settings, sessions)]))

    [received] = await smtp.wait_for(1)
    assert received.mail_from == "support@shop.example"
    assert received.rcpt_tos == ("ivan@example.ru",)
    message = parsed(received.content)
    [item] = await support.outbox(sessions)
    assert item.id == row and item.status is OutboxStatus.SENT
    assert message["Message-ID"] == f"<{item.external_id}>"
    assert item.external_id == outbox_message_id(
        item.id, item.created_at, item.recipient, "shop.example"
    )
    assert message["Subject"] == f"Re: Где мой заказ 12345? [#{ticket_id}]"
    assert str(message["From"]) == "Магазин <support@shop.example>"
    assert str(message["To"]) == "Иван Петров <ivan@example.ru>"
    assert message["In-Reply-To"] == "<q1@ex.ru>"
    assert message["References"] == "<q1@ex.ru>"
    assert message["Auto-Submitted"] is None
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Заказ <b>12345</b> передан курьеру." in text
    assert f"Номер обращения: #{ticket_id}" in text
    assert "Заказ &lt;b&gt;12345&lt;/b&gt; передан курьеру.<br>" in html
    assert f"Номер обращения: #{ticket_id}" in html


async def test_english_customers_get_english_layout_and_automatic_mail_is_marked(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, tmp_path: Path
) -> None:
    settings = support.settings(tmp_path, smtp=smtp)
    ticket_id = await customer_ticket(
        sessions,
        settings,
        mail("John <john@example.com>", "Order 4711", "Where is it?", message_id="j1@ex.com"),
    )
    await queue(sessions, "john@example.com", text="It ships today.", ticket_id=ticket_id)
    await queue(
        sessions,
        "john@example.com",
        subject=f"We have received your request [#{ticket_id}]",
        text="Hello! We will answer within 2 hours.",
        html="<p>Hello! We will answer within 2 hours.</p><script>alert(1)</script>",
        ticket_id=ticket_id,
        auto=True,
        in_reply_to="j1@ex.com",
    )
    await send_all(OutboxWorker(sessions, [SmtpSender(settings, sessions)]))

    reply, ack = (parsed(r.content) for r in await smtp.wait_for(2))
    assert f"Request number: #{ticket_id}" in reply.get_body(("plain",)).get_content()
    assert reply["Subject"] == f"Re: Order 4711 [#{ticket_id}]"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Subject"] == f"We have received your request [#{ticket_id}]"  # tagged once
    assert ack["In-Reply-To"] == "<j1@ex.com>"
    assert ack["References"] == f"{reply['Message-ID']} <j1@ex.com>"  # the parent last
    ack_html = ack.get_body(("html",)).get_content()
    assert "<p>Hello! We will answer within 2 hours.</p>" in ack_html
    assert "<script>" not in ack_html
    assert "Request number" not in ack.get_body(("plain",)).get_content()


async def test_line_breaks_in_customer_text_cannot_inject_headers(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, tmp_path: Path
) -> None:
    settings = support.settings(tmp_path, smtp=smtp)
    await queue(
        sessions,
        "ivan@example.ru",
        to_name="Иван\r\nBcc: victim@example.com",
        subject="Заказ 1\r\nBcc: victim@example.com\nX-Evil: 1",
        text="Ответ",
    )
    await send_all(OutboxWorker(sessions, [SmtpSender(settings, sessions)]))

    [received] = await smtp.wait_for(1)
    assert received.rcpt_tos == ("ivan@example.ru",)
    message = parsed(received.content)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"] == "Заказ 1 Bcc: victim@example.com X-Evil: 1"
    assert message["To"].addresses[0].addr_spec == "ivan@example.ru"
    assert message["To"].addresses[0].display_name == "Иван Bcc: victim@example.com"


async def test_smtp_down_then_up_delivers_each_row_exactly_once(
    sessions: async_sessionmaker[AsyncSession], smtp: SmtpServer, tmp_path: Path
) -> None:
    settings = support.settings(tmp_path, smtp=smtp)
    clock = Clock()
    worker = OutboxWorker(sessions, [SmtpSender(settings, sessions, timeout=5)], now=clock)
    smtp.stop()
    rows = [
        await queue(sessions, "a@example.ru", text="Первое"),
        await queue(sessions, "b@example.ru", text="Второе"),
        await queue(sessions, "a@example.ru", text="Третье"),
    ]
    clock.at = utcnow()
    assert await worker.run_once() == 2  # the third waits behind the first (same address)
    assert await worker.run_once() == 0  # backing off
    pending = await support.outbox(sessions)
    assert [i.status for i in pending] == [OutboxStatus.PENDING] * 3
    assert [i.attempts for i in pending] == [1, 1, 0]
    assert "SMTP server unavailable" in pending[0].last_error

    smtp.start()
    clock.at += timedelta(minutes=1)
    await send_all(worker)
    clock.at += timedelta(hours=1)
    await send_all(worker)

    received = smtp.received
    assert len(received) == 3
    sent = await support.outbox(sessions)
    assert [i.status for i in sent] == [OutboxStatus.SENT] * 3
    assert [i.id for i in sent] == rows
    ids = [parsed(r.content)["Message-ID"] for r in received]
    assert sorted(ids) == sorted(f"<{i.external_id}>" for i in sent)
    bodies = [
        parsed(r.content).get_body(("plain",)).get_content().splitlines()[0] for r in received
    ]
    assert bodies.index("Первое") < bodies.index("Третье")


class Refusing:
    """Accepts mail, but refuses some recipients as a real server would."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, ...]] = []

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
        if address.startswith("busy@"):
            return "452 4.2.2 Mailbox full, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.delivered.append(tuple(envelope.rcpt_tos))
        return "250 OK"


async def test_refused_recipients_bounced_addresses_and_bad_addresses(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    handler = Refusing()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        settings = support.settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port)
        result = await EmailIngestor(settings).store_batch(
            sessions, [(mail("Dead <dead@example.org>", "Hi", "Hello", message_id="x@d"), "t")]
        )
        async with sessions() as session, session.begin():
            await session.execute(update(Identity).values(failing=True))
        dead_ticket = result.outcomes[0].ticket_id
        await queue(sessions, "nobody@example.org", text="1")
        await queue(sessions, "busy@example.org", text="2")
        await queue(sessions, "not an address", text="3")
        await queue(sessions, "dead@example.org", text="4", auto=True, ticket_id=dead_ticket)
        await queue(sessions, "ok@example.org", text="5")
        await queue(sessions, "dead@example.org", text="6", ticket_id=dead_ticket)
        await send_all(OutboxWorker(sessions, [SmtpSender(settings, sessions)]))
    finally:
        controller.stop()

    items = await support.outbox(sessions)
    assert [i.status for i in items] == [
        OutboxStatus.FAILED,
        OutboxStatus.PENDING,
        OutboxStatus.FAILED,
        OutboxStatus.FAILED,
        OutboxStatus.SENT,
        OutboxStatus.SENT,  # an agent may still write to a bounced address
    ]
    assert "User unknown" in items[0].last_error
    assert "Mailbox full" in items[1].last_error
    assert "not a usable email address" in items[2].last_error
    assert "bounced" in items[3].last_error
    assert handler.delivered == [("ok@example.org",), ("dead@example.org",)]

"""/status for email: IMAP and SMTP failing with the last error, and ok again after recovery,
against the real Dovecot and SMTP test servers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter import health
from callcenter.channels.email.imap import ImapAccount, ImapClient, ImapError
from callcenter.channels.email.smtp import SmtpSender
from callcenter.config import Settings
from callcenter.health import State
from callcenter.models import OutboxStatus
from callcenter.outbox import OutboxWorker, enqueue
from tests.email import support
from tests.services.dovecot import free_port, running_dovecot
from tests.services.smtp import running_smtp


def component(name: str) -> health.ComponentHealth:
    return next(c for c in health.registry.snapshot() if c.name == name)


async def connect_and_select(account: ImapAccount) -> None:
    client = ImapClient(account)
    try:
        await client.connect()
        await client.select("INBOX")
    finally:
        await client.close()


async def test_imap_is_failing_while_refused_and_ok_once_logged_in() -> None:
    async with running_dovecot() as dovecot:
        good = ImapAccount(dovecot.host, dovecot.port, dovecot.user, dovecot.password, "none", 5)
        nobody_listens = ImapAccount("127.0.0.1", free_port(), dovecot.user, "x", "none", 5)
        try:
            await connect_and_select(nobody_listens)
        except ImapError as exc:
            refused = exc
        else:
            raise AssertionError("connecting to a closed port succeeded")
        imap = component("imap")
        assert imap.state is State.FAILING
        assert imap.last_error == str(refused) and "refused" in imap.last_error.lower()

        await connect_and_select(good)
        assert component("imap").state is State.OK


async def queue(sessions: async_sessionmaker[AsyncSession], recipient: str) -> None:
    async with sessions() as session, session.begin():
        enqueue(session, channel="email", recipient=recipient, payload={"text": "Здравствуйте"})


async def send(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, recipient: str
) -> OutboxStatus:
    """One outbox pass; returns the status of the row to ``recipient``."""
    await OutboxWorker(sessions, [SmtpSender(settings, sessions, timeout=5)]).run_once()
    [row] = [r for r in await support.outbox(sessions) if r.recipient == recipient]
    return row.status


class RefusesEveryone:
    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        return "550 5.1.1 Recipient address rejected: User unknown"


async def test_smtp_down_is_failing_a_refused_recipient_is_not(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with running_smtp() as smtp:
        settings = support.settings(tmp_path, smtp=smtp)
        await asyncio.to_thread(smtp.stop)
        await queue(sessions, "ivan@example.ru")
        assert await send(sessions, settings, "ivan@example.ru") is OutboxStatus.PENDING
        down = component("smtp")
        assert down.state is State.FAILING
        assert "SMTP server unavailable" in down.last_error

        refusing = Controller(RefusesEveryone(), hostname=smtp.host, port=smtp.port)
        await asyncio.to_thread(refusing.start)
        try:
            await queue(sessions, "nobody@example.org")  # given up: that address only
            assert await send(sessions, settings, "nobody@example.org") is OutboxStatus.FAILED
        finally:
            await asyncio.to_thread(refusing.stop)
        assert component("smtp").state is State.OK  # the server answered: no outage

        await asyncio.to_thread(smtp.start)
        await queue(sessions, "olga@example.ru")
        assert await send(sessions, settings, "olga@example.ru") is OutboxStatus.SENT
        assert component("smtp").state is State.OK
        assert [r.rcpt_tos for r in smtp.received][-1] == ("olga@example.ru",)

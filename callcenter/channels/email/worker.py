"""Wiring: one reader per configured mailbox and the email outbox sender.

``callcenter worker email`` and ``callcenter serve`` call ``run_email_worker``; a server that
runs one shared OutboxWorker for all channels passes ``send=False`` and adds
``email_sender(settings, sessions)`` to it instead.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.email.imap import ImapAccount, quote_mailbox
from callcenter.channels.email.ingest import EmailIngestor
from callcenter.channels.email.reader import MailboxReader
from callcenter.channels.email.smtp import SmtpSender
from callcenter.config import ConfigError, Settings
from callcenter.outbox import OutboxWorker

log = logging.getLogger(__name__)


def mailboxes(settings: Settings) -> list[str]:
    """The configured mailbox names, validated."""
    names = [name.strip() for name in settings.imap_mailboxes.split(",") if name.strip()]
    if not names:
        raise ConfigError("imap_mailboxes is empty: name at least one mailbox, e.g. INBOX")
    for name in names:
        quote_mailbox(name)
    return list(dict.fromkeys(names))


def email_sender(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> SmtpSender:
    """The outbox sender for channel ``email``."""
    return SmtpSender(settings, sessions)


def readers(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus | None,
    **options: float,
) -> list[MailboxReader]:
    account = ImapAccount.from_settings(settings)
    ingestor = EmailIngestor(settings)
    return [
        MailboxReader(account, mailbox, ingestor, sessions, bus, **options)  # type: ignore[arg-type]
        for mailbox in mailboxes(settings)
    ]


async def run_email_worker(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    stop: asyncio.Event,
    *,
    send: bool = True,
    outbox_idle: float = 1.0,
) -> None:
    """Read the mailboxes (and send the email outbox) until ``stop`` is set."""
    tasks = [
        asyncio.create_task(reader.run(stop), name=f"email-imap:{reader.mailbox}")
        for reader in readers(settings, sessions, bus)
    ]
    if send:
        outbox = OutboxWorker(
            sessions,
            [email_sender(settings, sessions)],
            idle_seconds=outbox_idle,
            lease=timedelta(seconds=settings.outbox_lease_seconds),
        )
        tasks.append(asyncio.create_task(outbox.run(stop), name="email-outbox"))
    log.info(
        "email worker started: %d mailbox(es)%s", len(tasks) - send, ", sending" if send else ""
    )
    try:
        await stop.wait()
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("email worker task failed: %r", result)

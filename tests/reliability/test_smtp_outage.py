"""The SMTP server is down for many times the outbox's first backoff (2 s, then 4, 8...) while
the email worker runs on the real clock with 30 replies queued: every row fails several times,
and once the server is back the outbox drains: one mail per row, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import email
from email.policy import default
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.email.worker import email_sender
from callcenter.models import Outbox, OutboxStatus
from callcenter.outbox import OutboxWorker, enqueue
from tests.email.support import SHOP
from tests.email.support import settings as email_settings
from tests.reliability.processes import until
from tests.services.smtp import SmtpServer

REPLIES = 30
OUTAGE = 15.0  # seconds: the first backoff is 2 s, so each row fails three or four times


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as session:
        return list(await session.scalars(select(Outbox).order_by(Outbox.id)))


async def test_an_smtp_outage_long_against_the_backoff_then_one_mail_per_row(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    smtp = SmtpServer()  # not started: the server is down
    settings = email_settings(tmp_path, smtp=smtp, smtp_from=SHOP)
    async with sessions() as session, session.begin():
        for n in range(REPLIES):
            enqueue(
                session, channel="email", recipient=f"r{n}@example.ru", payload={"text": f"{n}"}
            )
    stop = asyncio.Event()
    outbox = OutboxWorker(sessions, [email_sender(settings, sessions)], idle_seconds=0.2)
    worker = asyncio.create_task(outbox.run(stop))  # what the email worker runs
    try:
        await asyncio.sleep(OUTAGE)
        down = await _rows(sessions)
        await asyncio.to_thread(smtp.start)

        async def drained() -> bool:
            return all(row.status is OutboxStatus.SENT for row in await _rows(sessions))

        await until(drained, "the outbox drained", timeout=60)
        await asyncio.sleep(1)  # a moment more for a duplicate to show
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
        await asyncio.to_thread(smtp.stop)

    assert all(row.status is OutboxStatus.PENDING for row in down)
    assert min(row.attempts for row in down) >= 2, [row.attempts for row in down]
    assert "SMTP server unavailable" in down[0].last_error
    rows = await _rows(sessions)
    message_ids = [
        email.message_from_bytes(m.content, policy=default)["Message-ID"] for m in smtp.received
    ]
    assert len(message_ids) == REPLIES
    assert sorted(message_ids) == sorted(f"<{row.external_id}>" for row in rows)
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == sorted(row.recipient for row in rows)

"""Two copies of the email worker (`callcenter worker email`, and `callcenter serve`, which runs
the same ingest and outbox) read one mailbox and send one outbox; both are killed with SIGKILL
in the middle of sending and two new copies started. Every mail is stored once and every
outbox row is sent: one message per row. (A row whose mail the SMTP server had accepted when
its sender was killed, before the row was marked sent, goes out once more after the lease
lapses: at least once by design, with the same Message-ID, which mail clients show once.)"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import uuid
from collections.abc import AsyncIterator
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.models import Channel, Direction, Interaction, Outbox, OutboxStatus
from callcenter.outbox import enqueue
from tests.email.support import SHOP, mail
from tests.reliability.processes import Processes, all_sent, kill, until
from tests.services.dovecot import Dovecot, running_dovecot

MAILS = 60
REPLIES = 30
SMTP_SECONDS = 0.3  # per message: the kill lands in the middle of sending
LEASE_SECONDS = "8"  # many sends long (renewed before each), yet no minute waited per kill


@pytest.fixture(scope="module")
async def imap_server() -> AsyncIterator[Dovecot]:
    async with running_dovecot() as server:
        yield server


class SlowRecorder:
    """Accepts each message after `SMTP_SECONDS`, and records it."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        await asyncio.sleep(SMTP_SECONDS)
        self.received.append(bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[int, SlowRecorder]]:
    recorder, port = SlowRecorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ready_timeout=10)
    await asyncio.to_thread(controller.start)
    try:
        yield port, recorder
    finally:
        await asyncio.to_thread(controller.stop)


@pytest.mark.parametrize("command", ["worker", "serve"])
async def test_two_copies_killed_mid_work_and_restarted_lose_and_double_nothing(
    command: str,
    database: tuple[str, async_sessionmaker[AsyncSession]],
    imap_server: Dovecot,
    smtp: tuple[int, SlowRecorder],
    tmp_path: Path,
) -> None:
    url, sessions = database
    smtp_port, recorder = smtp
    box = dataclasses.replace(imap_server, user=f"shop-{uuid.uuid4().hex[:10]}@example.test")
    for n in range(MAILS):
        box.append(
            mail(f"c{n}@example.ru", f"Вопрос {n}", f"Где заказ {n}?", message_id=f"m{n}@ex")
        )
    async with sessions() as session, session.begin():
        for n in range(REPLIES):
            enqueue(
                session,
                channel="email",
                recipient=f"r{n}@example.ru",
                payload={"text": f"Ответ {n}"},
            )
    settings = {
        "database_url": url, "data_dir": str(tmp_path),
        "imap_host": box.host, "imap_port": str(box.port), "imap_user": box.user,
        "imap_password": box.password, "imap_security": "none",
        "smtp_host": "127.0.0.1", "smtp_port": str(smtp_port), "smtp_security": "none",
        "smtp_from": SHOP, "session_key": "faults-session-key-" + "x" * 32,
        "outbox_lease_seconds": LEASE_SECONDS,
    }  # fmt: skip

    processes = Processes(tmp_path)

    def launch() -> asyncio.Future[asyncio.subprocess.Process]:
        args = ["worker", "email"] if command == "worker" else ["serve", "--port", str(free_port())]
        own = settings | {"agi_port": str(free_port())}  # serve's FastAGI server
        return asyncio.ensure_future(processes.start(args, own))

    try:
        copies = list(await asyncio.gather(launch(), launch()))
        # Generous: two copies of the product starting on a loaded 2-core machine.
        await until(_at_least(recorder, 3), "the first replies sent", timeout=180)
        await asyncio.gather(*(kill(p) for p in copies))
        await asyncio.sleep(SMTP_SECONDS + 1)  # a mail whose sender died may still be recorded
        sent_at_kill = len(recorder.received)
        assert sent_at_kill < REPLIES, "the kill should land before the sending is done"

        copies = list(await asyncio.gather(launch(), launch()))
        # The rows the killed copies had leased wait for their lease to lapse.
        await until(all_sent(sessions), "every outbox row sent", timeout=180)
        await until(_stored(sessions, MAILS), "every mail stored", timeout=60)
        await asyncio.sleep(2)  # a moment more for a duplicate to show
        for process in copies:
            await processes.stop(process)
    finally:
        await processes.close()

    async with sessions() as session:
        inbound = list(
            await session.scalars(
                select(Interaction.external_id).where(
                    Interaction.channel == Channel.EMAIL, Interaction.direction == Direction.INBOUND
                )
            )
        )
        rows = list(await session.scalars(select(Outbox)))
    assert sorted(inbound) == sorted(f"m{n}@ex" for n in range(MAILS))
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    message_ids = [
        email.message_from_bytes(raw, policy=default)["Message-ID"] for raw in recorder.received
    ]
    assert sorted(set(message_ids)) == sorted(f"<{row.external_id}>" for row in rows)
    # At most the mail each killed copy had handed to the server when it died goes twice.
    doubled = [m for m in set(message_ids) if message_ids.count(m) > 1]
    assert len(doubled) <= len(copies), doubled
    assert all(message_ids.index(m) < sent_at_kill for m in doubled), "doubled after the kill"


def _at_least(recorder: SlowRecorder, count: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(recorder.received) >= count

    return check


def _stored(sessions: async_sessionmaker[AsyncSession], count: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        async with sessions() as session:
            query = select(func.count()).where(
                Interaction.channel == Channel.EMAIL, Interaction.direction == Direction.INBOUND
            )
            return (await session.scalar(query) or 0) >= count

    return check

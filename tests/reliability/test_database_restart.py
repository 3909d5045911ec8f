"""PostgreSQL crashes (pg_ctl stop -m immediate) and comes back while `callcenter worker
telegram` and `callcenter worker email` are storing messages: the workers ride it out, and
every Telegram update and every mail is stored exactly once. The server is the test's own."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import Channel, Direction, Interaction
from tests.email.support import SHOP, mail
from tests.fakes.botapi import BotApiServer
from tests.reliability.privatepg import PrivatePostgres, private_postgres
from tests.reliability.processes import Processes, until
from tests.services.dovecot import Dovecot, running_dovecot

UPDATES = 300
MAILS = 150


@pytest.fixture
async def database() -> AsyncIterator[tuple[PrivatePostgres, async_sessionmaker[AsyncSession]]]:
    async with private_postgres() as server:
        await upgrade_async(server.url)
        engine = create_engine(server.url)
        try:
            yield server, session_factory(engine)
        finally:
            await engine.dispose()


@pytest.fixture
async def mailbox() -> AsyncIterator[Dovecot]:
    async with running_dovecot() as server:
        yield dataclasses.replace(server, user=f"shop-{uuid.uuid4().hex[:10]}@example.test")


async def test_a_database_crash_during_telegram_and_email_ingest_loses_and_doubles_nothing(
    database: tuple[PrivatePostgres, async_sessionmaker[AsyncSession]],
    mailbox: Dovecot,
    tmp_path: Path,
) -> None:
    server, sessions = database
    filler = "Подробное описание проблемы с заказом.\n" * 100
    for n in range(MAILS):
        mailbox.append(mail(f"m{n}@example.ru", f"Письмо {n}", filler, message_id=f"pg{n}@ex"))
    processes = Processes(tmp_path)
    async with BotApiServer() as api:
        texts = [f"Сообщение {n}: где заказ №{20_000 + n}?" for n in range(UPDATES)]
        for n, text in enumerate(texts):
            api.push_message(8_000_000 + n % 50, text)
        common = {"database_url": server.url, "data_dir": str(tmp_path)}
        telegram = common | {"telegram_token": api.token, "telegram_api_base": api.base_url}
        email = common | {
            "imap_host": mailbox.host, "imap_port": str(mailbox.port), "imap_user": mailbox.user,
            "imap_password": mailbox.password, "imap_security": "none", "smtp_from": SHOP,
        }  # fmt: skip
        try:
            workers = [
                await processes.start(["worker", "telegram"], telegram),
                await processes.start(["worker", "email"], email),
            ]
            await until(_some_stored(sessions), "both workers storing", timeout=180)

            await server.stop("immediate")
            stored_at_crash = await _counts_after_restart(server, sessions)
            assert stored_at_crash != (UPDATES, MAILS), "the crash should land mid-ingest"
            for worker in workers:
                assert worker.returncode is None, processes.log_of(worker)

            await until(_all_stored(sessions), "every update and mail stored", timeout=240)
            await api.wait_until(lambda: api.pending_updates == 0, 60, "updates confirmed")
            await asyncio.sleep(2)  # a moment more for a duplicate to show
            for worker in workers:
                await processes.stop(worker)
        finally:
            await processes.close()

    async with sessions() as session:
        rows = list(
            await session.execute(
                select(Interaction.channel, Interaction.external_id, Interaction.text).where(
                    Interaction.direction == Direction.INBOUND
                )
            )
        )
    telegram_rows = [r for r in rows if r.channel == Channel.TELEGRAM]
    email_rows = [r for r in rows if r.channel == Channel.EMAIL]
    assert len(telegram_rows) == UPDATES
    assert len({r.external_id for r in telegram_rows}) == UPDATES
    assert sorted(r.text for r in telegram_rows) == sorted(texts)
    assert sorted(r.external_id for r in email_rows) == sorted(f"pg{n}@ex" for n in range(MAILS))


async def _count(sessions: async_sessionmaker[AsyncSession], channel: Channel) -> int:
    async with sessions() as session:
        query = select(func.count()).where(
            Interaction.channel == channel, Interaction.direction == Direction.INBOUND
        )
        return await session.scalar(query) or 0


async def _counts_after_restart(
    server: PrivatePostgres, sessions: async_sessionmaker[AsyncSession]
) -> tuple[int, int]:
    """Start the crashed server again after a few seconds down; what it had stored."""
    await asyncio.sleep(5)
    await server.start()
    return await _count(sessions, Channel.TELEGRAM), await _count(sessions, Channel.EMAIL)


def _some_stored(sessions: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return (
            await _count(sessions, Channel.TELEGRAM) > 0
            and await _count(sessions, Channel.EMAIL) > 0
        )

    return check


def _all_stored(sessions: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return (
            await _count(sessions, Channel.TELEGRAM),
            await _count(sessions, Channel.EMAIL),
        ) == (
            UPDATES,
            MAILS,
        )

    return check

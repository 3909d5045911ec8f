"""The product as ``callcenter serve`` runs it: a Telegram message (through the fake Bot API)
becomes a ticket, a lead in the fake Bitrix24 and a signed webhook at a verifying receiver; so
does a ticket whose process died right after its commit, once."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.config import Settings
from callcenter.crm.models import FeedCheckpoint
from callcenter.serve import serve
from tests.crm.fakes import FakeBitrix24, Receiver
from tests.crm.test_webhooks import SECRET, subscribe
from tests.fakes.botapi import BotApiServer

EVENTS = ["message.received", "ticket.created"]
Until = Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]


@dataclass
class Crm:
    """The fake Bitrix24 and a webhook receiver subscribed to `EVENTS`, and the settings of a
    ``serve`` that uses both."""

    bitrix: FakeBitrix24
    hook: Receiver
    settings: Callable[..., Settings]

    async def delivered(self) -> bool:
        return bool(self.bitrix.leads) and len(self.hook.accepted) == len(EVENTS)

    def assert_delivered_once(self, text: str) -> dict[str, Any]:
        """One lead with `text`, one accepted webhook per event, none rejected; the lead."""
        [lead] = self.bitrix.leads.values()
        assert lead["COMMENTS"] == text
        assert sorted(e["event"]["type"] for e in self.hook.accepted) == EVENTS
        assert self.hook.rejected == []
        return lead


@pytest.fixture
async def crm(
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    bitrix_server: tuple[FakeBitrix24, str],
    receiver: tuple[Receiver, str],
) -> Crm:
    bitrix, portal = bitrix_server
    hook, hook_url = receiver
    hook.secret = SECRET
    await subscribe(sessions, hook_url, EVENTS)
    port = free_port()

    def settings(**extra: Any) -> Settings:
        return Settings(
            data_dir=tmp_path,
            database_url=database_url,
            web_port=port,
            session_key="crm-e2e-session-key-" + "x" * 32,
            crm_provider="bitrix24",
            bitrix24_portal=portal,
            bitrix24_user_id=FakeBitrix24.USER,
            bitrix24_webhook_code=FakeBitrix24.CODE,
            **extra,
        )

    return Crm(bitrix, hook, settings)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Until]:
    """Serve until the block ends; yields a wait (60 s at most) for a condition while it runs."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, "127.0.0.1", settings.web_port, stop))

    async def until(ready: Callable[[], Awaitable[bool]]) -> None:
        async with asyncio.timeout(60):
            while not await ready():
                assert not task.done(), task
                await asyncio.sleep(0.2)

    try:
        yield until
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_serve_sends_a_new_telegram_ticket_to_bitrix24_and_to_a_webhook(crm: Crm) -> None:
    async with BotApiServer() as api:
        settings = crm.settings(telegram_token=api.token, telegram_api_base=api.base_url)
        async with serving(settings) as until:
            api.push_message(7001, "Здравствуйте! Где мой заказ 12345?")
            await until(crm.delivered)

    lead = crm.assert_delivered_once("Здравствуйте! Где мой заказ 12345?")
    assert lead["SOURCE_DESCRIPTION"] == "telegram"
    assert lead["TITLE"].startswith("#")


CRASH_AFTER_COMMIT = """
import asyncio, os, signal, sys
from callcenter.db import create_engine, session_factory
from tests.automation.helpers import email_message, receive

async def main() -> None:
    sessions = session_factory(create_engine(sys.argv[1]))
    await receive(sessions, email_message("Верните деньги за заказ 777", "crash@example.ru"))
    os.kill(os.getpid(), signal.SIGKILL)  # committed; no bus handler ever runs

asyncio.run(main())
"""


async def test_a_ticket_whose_process_died_after_the_commit_still_reaches_crm_and_webhook(
    crm: Crm, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    async def checkpoints() -> bool:
        async with sessions() as session:
            return len(list(await session.scalars(select(FeedCheckpoint)))) == 4

    # The first run sets the checkpoints, then another process commits and dies; a restart
    # reads the same rows again.
    async with serving(crm.settings()) as until:
        await until(checkpoints)
        crashed = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CRASH_AFTER_COMMIT, database_url, cwd=Path(__file__).parents[2]
        )
        assert await crashed.wait() == -signal.SIGKILL
        await until(crm.delivered)
        await asyncio.sleep(11)  # two more catch-up passes (every 5 s)
    async with serving(crm.settings()) as until:
        await until(crm.delivered)
        await asyncio.sleep(11)

    crm.assert_delivered_once("Верните деньги за заказ 777")
    assert crm.bitrix.methods().count("crm.lead.add") == 1

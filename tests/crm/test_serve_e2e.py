"""The product as ``callcenter serve`` runs it: a Telegram message (through the fake Bot API)
becomes a ticket, a lead in the fake Bitrix24 and a signed webhook at a verifying receiver; so
does a ticket whose process died right after its commit, once."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.config import Settings
from callcenter.crm.models import FeedCheckpoint
from callcenter.serve import serve
from tests.crm.fakes import FakeBitrix24, Receiver
from tests.crm.test_webhooks import SECRET, subscribe
from tests.fakes.botapi import BotApiServer


async def test_serve_sends_a_new_telegram_ticket_to_bitrix24_and_to_a_webhook(
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    bitrix_server: tuple[FakeBitrix24, str],
    receiver: tuple[Receiver, str],
) -> None:
    bitrix, portal = bitrix_server
    hook, hook_url = receiver
    hook.secret = SECRET
    await subscribe(sessions, hook_url, ["ticket.created", "message.received"])
    port = free_port()
    async with BotApiServer() as api:
        settings = Settings(
            data_dir=tmp_path,
            database_url=database_url,
            web_port=port,
            session_key="crm-e2e-session-key-" + "x" * 32,
            telegram_token=api.token,
            telegram_api_base=api.base_url,
            crm_provider="bitrix24",
            bitrix24_portal=portal,
            bitrix24_user_id=FakeBitrix24.USER,
            bitrix24_webhook_code=FakeBitrix24.CODE,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop))
        try:
            api.push_message(7001, "Здравствуйте! Где мой заказ 12345?")
            async with asyncio.timeout(60):
                while not (bitrix.leads and len(hook.accepted) == 2):
                    assert not task.done(), task
                    await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    [lead] = bitrix.leads.values()
    assert lead["COMMENTS"] == "Здравствуйте! Где мой заказ 12345?"
    assert lead["SOURCE_DESCRIPTION"] == "telegram"
    assert lead["TITLE"].startswith("#")
    assert sorted(e["event"]["type"] for e in hook.accepted) == [
        "message.received",
        "ticket.created",
    ]
    assert hook.rejected == []


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
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    bitrix_server: tuple[FakeBitrix24, str],
    receiver: tuple[Receiver, str],
) -> None:
    bitrix, portal = bitrix_server
    hook, hook_url = receiver
    hook.secret = SECRET
    await subscribe(sessions, hook_url, ["ticket.created", "message.received"])
    port = free_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        web_port=port,
        session_key="crm-e2e-session-key-" + "x" * 32,
        crm_provider="bitrix24",
        bitrix24_portal=portal,
        bitrix24_user_id=FakeBitrix24.USER,
        bitrix24_webhook_code=FakeBitrix24.CODE,
    )

    async def checkpoints() -> bool:
        async with sessions() as session:
            return len(list(await session.scalars(select(FeedCheckpoint)))) == 4

    async def delivered() -> bool:
        return bool(bitrix.leads) and len(hook.accepted) == 2

    async def crash_after_commit() -> None:
        crashed = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CRASH_AFTER_COMMIT, database_url, cwd=Path(__file__).parents[2]
        )
        assert await crashed.wait() == -signal.SIGKILL

    # The first run sets the checkpoints, then another process commits and dies; a restart
    # reads the same rows again.
    for ready, meanwhile in ((checkpoints, crash_after_commit), (delivered, None)):
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop))
        try:
            async with asyncio.timeout(60):
                while not await ready():
                    assert not task.done(), task
                    await asyncio.sleep(0.2)
                if meanwhile is not None:
                    await meanwhile()
                    while not await delivered():
                        assert not task.done(), task
                        await asyncio.sleep(0.2)
            await asyncio.sleep(11)  # two more catch-up passes (every 5 s)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    [lead] = bitrix.leads.values()
    assert lead["COMMENTS"] == "Верните деньги за заказ 777"
    assert sorted(e["event"]["type"] for e in hook.accepted) == [
        "message.received",
        "ticket.created",
    ]
    assert bitrix.methods().count("crm.lead.add") == 1

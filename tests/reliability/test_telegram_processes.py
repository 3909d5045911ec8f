"""Two copies of `callcenter worker telegram` poll one bot and send one outbox; both are killed
with SIGKILL in the middle of the work and two new copies started. Every update is stored once
and every outbox row is sent: one message per row, except that a row the Bot API had taken
when its sender died (before the row was marked sent) goes out once more after its lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import Channel, Direction, Interaction
from callcenter.outbox import enqueue
from tests.fakes.botapi import BotApiServer
from tests.reliability.processes import Processes, all_sent, kill, until

UPDATES = 300
REPLIES = 40
CHATS = 50


async def test_two_copies_killed_mid_work_and_restarted_lose_and_double_nothing(
    database: tuple[str, async_sessionmaker[AsyncSession]], tmp_path: Path
) -> None:
    url, sessions = database
    replies = [f"Ответ оператора {n}" for n in range(REPLIES)]
    async with sessions() as session, session.begin():
        for n, text in enumerate(replies):
            chat = str(9_000_000 + n % CHATS)
            enqueue(session, channel="telegram", recipient=chat, payload={"text": text})
    processes = Processes(tmp_path)
    async with BotApiServer() as api:
        texts = [f"Вопрос {n}: где заказ №{30_000 + n}?" for n in range(UPDATES)]
        for n, text in enumerate(texts):
            api.push_message(9_000_000 + n % CHATS, text)
        api.delay_next("sendMessage", 0.3, count=10_000)  # the kill lands mid-sending
        settings = {
            "database_url": url, "data_dir": str(tmp_path),
            "telegram_token": api.token, "telegram_api_base": api.base_url,
            "outbox_lease_seconds": "8",  # many sends long; no minute waited per kill
        }  # fmt: skip

        def ours() -> list[str]:
            return [m.text for m in api.sent if m.text in replies]

        try:
            copies = [await processes.start(["worker", "telegram"], settings) for _ in range(2)]
            await until(_ready(lambda: len(ours()) >= 3), "the first replies sent", timeout=180)
            await asyncio.gather(*(kill(p) for p in copies))
            await asyncio.sleep(1.5)  # a message whose sender died may still be taken
            sent_at_kill = len(ours())
            assert sent_at_kill < REPLIES, "the kill should land before the sending is done"
            api.clear_faults()  # the slow sending only had to span the kill

            copies = [await processes.start(["worker", "telegram"], settings) for _ in range(2)]
            # The rows the killed copies had leased wait for their lease to lapse.
            await until(all_sent(sessions), "every outbox row sent", timeout=180)
            await api.wait_until(lambda: api.pending_updates == 0, 120, "every update confirmed")
            await asyncio.sleep(2)  # a moment more for a duplicate to show
            for process in copies:
                await processes.stop(process)
        finally:
            await processes.close()
        sent = ours()

    async with sessions() as session:
        stored = list(
            await session.execute(
                select(Interaction.external_id, Interaction.text).where(
                    Interaction.channel == Channel.TELEGRAM,
                    Interaction.direction == Direction.INBOUND,
                )
            )
        )
    assert len(stored) == UPDATES
    assert len({external for external, _ in stored}) == UPDATES
    assert sorted(text for _, text in stored) == sorted(texts)
    assert set(sent) == set(replies), "a reply was never sent"
    doubled = [text for text, count in Counter(sent).items() if count > 1]
    assert len(doubled) <= len(copies), doubled
    assert all(sent.index(text) < sent_at_kill for text in doubled), "doubled after the kill"


def _ready(check):  # type: ignore[no-untyped-def]
    async def ready() -> bool:
        return check()

    return ready

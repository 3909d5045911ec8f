"""The worker killed with SIGKILL mid-batch and restarted: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telegram.models import TelegramUpdate
from callcenter.models import Channel, Direction, Interaction
from tests.fakes.botapi import BotApiServer

ROOT = Path(__file__).resolve().parents[2]
UPDATES = 400


async def _start(
    api: BotApiServer, database_url: str, data_dir: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "CALLCENTER_DATABASE_URL": database_url,
        "CALLCENTER_DATA_DIR": str(data_dir),
        "CALLCENTER_TELEGRAM_TOKEN": api.token,
        "CALLCENTER_TELEGRAM_API_BASE": api.base_url,
    }
    env.pop("CALLCENTER_CONFIG", None)
    env.pop("CALLCENTER_SECRETS_FILE", None)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.telegram.worker_process", cwd=ROOT, env=env
    )


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(TelegramUpdate)) or 0


async def test_sigkill_mid_batch_then_restart_loses_and_doubles_nothing(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    async with BotApiServer() as api:
        expected = []
        for number in range(UPDATES):
            text = f"Сообщение {number}: где заказ №{10_000 + number}?"
            api.push_message(7_000_000 + number % 40, text)
            expected.append(text)

        worker = await _start(api, database_url, tmp_path)
        try:
            # A getUpdates with an offset confirms a committed batch and fetches the next one,
            # which the worker is storing when it dies.
            await api.wait_until(
                lambda: any(call.int("offset") for call in api.calls_to("getUpdates")),
                60,
                "the first batch to be committed",
            )
        finally:
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
        at_kill = await _stored(sessions)
        assert 0 < at_kill < UPDATES, "the kill should land before the work is done"
        assert api.pending_updates > UPDATES - at_kill - 1

        worker = await _start(api, database_url, tmp_path)
        try:
            await api.wait_until(lambda: api.pending_updates == 0, 90, "every update confirmed")
        finally:
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), 30) == 0

    async with sessions() as session:
        rows = list(
            await session.execute(
                select(Interaction.external_id, Interaction.text).where(
                    Interaction.channel == Channel.TELEGRAM,
                    Interaction.direction == Direction.INBOUND,
                )
            )
        )
    assert len(rows) == UPDATES
    assert len({external for external, _ in rows}) == UPDATES
    assert sorted(text for _, text in rows) == sorted(expected)

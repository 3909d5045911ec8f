"""A Telegram channel wired to the local fake Bot API server and a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.telegram.files import MAX_FILE_BYTES
from callcenter.channels.telegram.hours import BusinessHours
from callcenter.channels.telegram.worker import TelegramChannel
from callcenter.config import Settings
from callcenter.models import Channel, Direction, Interaction
from tests.fakes.botapi import BotApiServer

OPEN_HOURS = BusinessHours(timezone="Europe/Moscow")
WEDNESDAY_NOON = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
SATURDAY_NOON = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
SECRET = "s3cret-webhook-token_0123456789"


@dataclass
class Harness:
    api: BotApiServer
    channel: TelegramChannel
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    settings: Settings

    async def poll(self) -> int:
        """One getUpdates batch stored, as the polling loop does it."""
        return await self.channel.poller.run_once()

    async def send(self) -> int:
        """One outbox pass."""
        return await self.channel.outbox.run_once()

    async def exchange(self) -> None:
        """Deliver what the user sent, then whatever the bot queued in answer."""
        while await self.poll():
            pass
        while await self.send():
            pass
        await self.channel.processor.drain()

    async def inbound(self) -> list[Interaction]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Interaction)
                .where(
                    Interaction.channel == Channel.TELEGRAM,
                    Interaction.direction == Direction.INBOUND,
                )
                .order_by(Interaction.id)
            )
            return list(rows)


def make_settings(api: BotApiServer, database_url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        telegram_token=api.token,
        telegram_api_base=api.base_url,
        telegram_webhook_secret=SECRET,
        session_key="telegram-tests-session-key-" + "k" * 24,
    )


@pytest.fixture
async def api() -> AsyncIterator[BotApiServer]:
    async with BotApiServer() as server:
        yield server


@pytest.fixture
def file_limit() -> int:
    return MAX_FILE_BYTES


@pytest.fixture
async def harness(
    api: BotApiServer,
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    file_limit: int,
) -> AsyncIterator[Harness]:
    settings = make_settings(api, database_url, tmp_path)
    bus = Bus()
    channel = TelegramChannel(
        settings,
        sessions,
        bus,
        hours=OPEN_HOURS,
        file_limit=file_limit,
        outbox_idle=0.05,
        poll_timeout=0,
    )
    channel.processor.now = lambda: WEDNESDAY_NOON
    try:
        yield Harness(api, channel, sessions, bus, settings)
    finally:
        await channel.processor.drain()
        await bus.drain()
        await channel.close()

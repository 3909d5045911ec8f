"""Wiring: the bot, its update processor, the outbox sender; polling or webhook mode.

``callcenter worker telegram`` and ``callcenter serve`` use ``run_telegram_worker`` (polling),
or build a ``TelegramChannel``, mount ``add_webhook_route`` on their web app and call
``channel.run(stop, webhook_url=...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import timedelta

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.surveys import SurveySigner
from callcenter.bus import Bus
from callcenter.channels.telegram.bot import (
    ALLOWED_UPDATES,
    BotConfig,
    Conversation,
    build_router,
)
from callcenter.channels.telegram.files import MAX_FILE_BYTES, TelegramFiles
from callcenter.channels.telegram.hours import BusinessHours
from callcenter.channels.telegram.orders import DemoOrderStatusProvider, OrderStatusProvider
from callcenter.channels.telegram.outbound import TelegramSender
from callcenter.channels.telegram.polling import Poller
from callcenter.channels.telegram.prestore import Prestore
from callcenter.channels.telegram.processor import UpdateProcessor
from callcenter.channels.telegram.redact import install_token_redaction
from callcenter.channels.telegram.webhook import WEBHOOK_PATH, add_route, check_secret
from callcenter.config import ConfigError, Settings
from callcenter.outbox import OutboxWorker

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
FORGET_EVERY = 3600.0


class TelegramChannel:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        provider: OrderStatusProvider | None = None,
        hours: BusinessHours | None = None,
        file_limit: int = MAX_FILE_BYTES,
        outbox_idle: float = 1.0,
        poll_timeout: int = 25,
    ) -> None:
        token = settings.telegram_token
        if not _TOKEN.match(token):
            raise ConfigError(
                "CALLCENTER_TELEGRAM_TOKEN is missing or is not a bot token (digits:letters)"
            )
        install_token_redaction(token)
        self.settings = settings
        self.bot = Bot(
            token,
            session=AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)),
        )
        self.files = TelegramFiles(settings.data_dir / "attachments", self.bot, file_limit)
        config = BotConfig(
            provider=provider or DemoOrderStatusProvider(),
            hours=hours or BusinessHours(timezone=settings.timezone),
            files=self.files,
            file_limit=file_limit,
            region=settings.default_region,
            surveys=SurveySigner(settings.session_key) if settings.session_key else None,
        )
        conversation = Conversation(config)
        self.dispatcher = Dispatcher()
        self.dispatcher.include_router(build_router(conversation))
        self._wake = asyncio.Event()
        self.processor = UpdateProcessor(
            sessions,
            self.bot,
            self.dispatcher,
            bus,
            on_replies=self._wake.set,
            prestore=Prestore(file_limit, settings.default_region, conversation.on_message),
        )
        self.sender = TelegramSender(self.bot, sessions, language=settings.language)
        self.outbox = OutboxWorker(
            sessions,
            [self.sender],
            idle_seconds=outbox_idle,
            lease=timedelta(seconds=settings.outbox_lease_seconds),
        )
        self.outbox_idle = outbox_idle
        self.poller = Poller(self.bot, self.processor, poll_timeout=poll_timeout)

    async def run(
        self,
        stop: asyncio.Event,
        *,
        webhook_url: str | None = None,
        send: bool = True,
    ) -> None:
        """Receive (polling, or the webhook at ``webhook_url``) and send until ``stop``.

        ``send=False`` leaves sending to a shared OutboxWorker that includes ``self.sender``.
        """
        # Our helper tasks stop on ``done``: set when ``stop`` is, or when receiving ends on its
        # own (an error), without touching ``stop``, which belongs to whoever runs us.
        done = asyncio.Event()
        relay = asyncio.create_task(self._relay(stop, done))
        tasks = [asyncio.create_task(self._forget_old(done), name="telegram-forget")]
        if send:
            tasks.append(asyncio.create_task(self._send(done), name="telegram-send"))
        try:
            if webhook_url:
                check_secret(self.settings.telegram_webhook_secret)
                await self.bot.set_webhook(
                    webhook_url,
                    secret_token=self.settings.telegram_webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                )
                await stop.wait()
            else:
                await self.poller.run(stop)
        finally:
            done.set()
            self._wake.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            relay.cancel()
            await self.processor.drain()

    @staticmethod
    async def _relay(stop: asyncio.Event, done: asyncio.Event) -> None:
        await stop.wait()
        done.set()

    async def _send(self, stop: asyncio.Event) -> None:
        """Outbox passes, at once when an update queued a reply, else every ``outbox_idle``."""
        while not stop.is_set():
            self._wake.clear()
            try:
                tried = await self.outbox.run_once()
            except Exception:
                log.exception("telegram outbox pass failed; retrying")
                tried = 0
            if not tried:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.outbox_idle)

    async def _forget_old(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.processor.forget_old()
            except Exception:
                log.exception("forgetting old telegram update ids failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FORGET_EVERY)

    async def close(self) -> None:
        await self.bot.session.close()


def add_webhook_route(
    app: web.Application, channel: TelegramChannel, *, path: str = WEBHOOK_PATH
) -> web.AbstractRoute:
    """Mount the webhook on ``app`` (before it starts); refuses to without a secret."""
    return add_route(
        app,
        channel.bot,
        channel.processor,
        secret=channel.settings.telegram_webhook_secret,
        path=path,
    )


async def run_telegram_worker(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    stop: asyncio.Event,
) -> None:
    """The Telegram worker in polling mode, with its own outbox sender, until ``stop``."""
    channel = TelegramChannel(settings, sessions, bus)
    try:
        await channel.run(stop)
    finally:
        await channel.close()

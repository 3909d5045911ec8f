"""Webhook mode: an aiohttp route that stores each update before answering 200.

The path never contains the bot token; the secret header is compared in constant time, and
without a secret the route is refused. Processing happens before the answer, so a 200 means
the update is committed; on a database failure Telegram gets a 500 and delivers it again.
"""

from __future__ import annotations

import hmac
import logging
import re
from json import JSONDecodeError

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from callcenter.channels.telegram.processor import UpdateProcessor
from callcenter.config import ConfigError

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


def check_secret(secret: str) -> None:
    if not secret:
        raise ConfigError(
            "telegram webhook mode needs CALLCENTER_TELEGRAM_WEBHOOK_SECRET; refusing to start"
        )
    if not _SECRET.match(secret):
        raise ConfigError(
            "telegram_webhook_secret must be 16-256 characters of A-Z, a-z, 0-9, _ and -"
        )


def webhook_handler(bot: Bot, processor: UpdateProcessor, secret: str):  # type: ignore[no-untyped-def]
    check_secret(secret)
    expected = secret.encode()

    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            log.warning(
                "telegram webhook: request without the right secret from %s", request.remote
            )
            return web.Response(status=401)
        try:
            update = Update.model_validate(await request.json(), context={"bot": bot})
        except (JSONDecodeError, ValidationError, UnicodeDecodeError, TypeError) as exc:
            log.warning("telegram webhook: unreadable update refused: %s", type(exc).__name__)
            return web.Response(status=400)
        try:
            await processor.process([update])
        except Exception:
            log.exception("telegram webhook: storing update %s failed", update.update_id)
            return web.Response(status=500)
        return web.Response(status=200)

    return handle


def add_route(
    app: web.Application,
    bot: Bot,
    processor: UpdateProcessor,
    *,
    secret: str,
    path: str = WEBHOOK_PATH,
) -> web.AbstractRoute:
    if bot.token in path:
        raise ConfigError("the telegram webhook path must not contain the bot token")
    return app.router.add_post(path, webhook_handler(bot, processor, secret))

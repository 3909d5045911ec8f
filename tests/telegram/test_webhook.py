"""Webhook mode and keeping the bot token out of paths, logs and stored errors."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from callcenter.bus import Bus
from callcenter.channels.telegram.files import AttachmentUnavailable
from callcenter.channels.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from callcenter.channels.telegram.worker import TelegramChannel, add_webhook_route
from callcenter.config import ConfigError
from callcenter.models import Outbox, utcnow
from tests.telegram.conftest import SECRET, Harness

CHAT = 5550006


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}{WEBHOOK_PATH}"


async def test_webhook_stores_before_answering_and_dedupes(harness: Harness) -> None:
    app = web.Application()
    add_webhook_route(app, harness.channel)
    runner, url = await _serve(app)
    stop = asyncio.Event()
    running = asyncio.create_task(harness.channel.run(stop, webhook_url=url))
    try:
        await harness.api.wait_calls("setWebhook")
        assert harness.api.token not in url
        update = harness.api.push_message(CHAT, "Где мой заказ №8008?")
        await harness.api.wait_sent(2)
        harness.api.push_raw(update)  # Telegram retries a delivery it thinks failed
        await harness.api.wait_until(
            lambda: len(harness.api.webhook_deliveries) >= 2, 5, "the second delivery"
        )
        async with aiohttp.ClientSession() as client:
            forged = {**update, "update_id": update["update_id"] + 100}
            for headers in ({}, {SECRET_HEADER: "wrong-secret-0123456789"}):
                async with client.post(url, json=forged, headers=headers) as response:
                    assert response.status == 401
            async with client.post(url, data=b"{not json", headers={SECRET_HEADER: SECRET}) as r:
                assert r.status == 400
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await runner.cleanup()
    deliveries = harness.api.webhook_deliveries
    assert [d.status for d in deliveries] == [200, 200]
    assert {d.secret_token for d in deliveries} == {SECRET}
    [stored] = await harness.inbound()
    assert stored.text == "Где мой заказ №8008?"
    assert len(harness.api.sent) == 2


async def test_webhook_mode_refuses_to_start_without_a_secret(harness: Harness) -> None:
    settings = harness.settings.__class__(
        **{**harness.settings.__dict__, "telegram_webhook_secret": ""}
    )
    channel = TelegramChannel(settings, harness.sessions, Bus())
    try:
        with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
            add_webhook_route(web.Application(), channel)
        with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
            await channel.run(asyncio.Event(), webhook_url="http://127.0.0.1:1/telegram/webhook")
    finally:
        await channel.close()
    assert harness.api.calls_to("setWebhook") == []


async def test_the_token_never_reaches_logs_or_stored_errors(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = harness.api.token
    caplog.set_level(logging.DEBUG)
    harness.api.push_message(CHAT, "Хочу вернуть деньги", document=b"data", file_name="a.txt")
    await harness.poll()
    # The file vanishes on Telegram's side: the download error quotes the URL with the token.
    monkeypatch.setattr(harness.api.world.files, "by_path", lambda path: None)
    [message] = await harness.inbound()
    with pytest.raises(AttachmentUnavailable) as caught:
        await harness.channel.files.open(message.attachments[0])
    assert "<telegram-token>" in str(caught.value) and token not in str(caught.value)
    logging.getLogger("test").error("download failed: %s", f"http://x/file/bot{token}/y")

    harness.api.fail_next("sendMessage", 502, count=1)
    harness.api.fail_next("sendMessage", 401, count=1)
    await harness.send()
    async with harness.sessions() as session:
        first = set(await session.scalars(select(Outbox.last_error)))
    harness.channel.outbox.now = lambda: utcnow() + timedelta(minutes=5)
    await harness.send()
    async with harness.sessions() as session:
        second = set(await session.scalars(select(Outbox.last_error)))
    errors = first | second
    assert any("Bad Gateway" in e for e in errors) and any("Unauthorized" in e for e in errors)
    assert all(token not in e for e in errors)
    assert token not in caplog.text
    assert "<telegram-token>" in caplog.text

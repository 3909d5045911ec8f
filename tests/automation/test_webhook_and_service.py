"""The webhook action against a real local HTTP server, and the automation as ``serve`` runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation import run_automation
from callcenter.automation.engine import Engine
from callcenter.automation.models import Rule
from callcenter.automation.service import automation_config
from callcenter.automation.webhook import WebhookSender
from callcenter.bus import Bus
from callcenter.config import ConfigError, Settings
from callcenter.models import Outbox, OutboxStatus
from callcenter.outbox import OutboxWorker, PermanentFailure
from tests.automation.helpers import (
    SECRET,
    Clock,
    make_customer,
    outbox_rows,
    receive,
    telegram_message,
)


@pytest.fixture
async def hook_server() -> AsyncIterator[tuple[str, list[Any], list[int]]]:
    """A local webhook receiver answering with the queued statuses (200 when none is left)."""
    received: list[Any] = []
    statuses: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", received, statuses
    finally:
        await runner.cleanup()


async def test_the_webhook_action_posts_the_event_and_retries_a_server_error(
    sessions: async_sessionmaker[AsyncSession], engine: Engine, clock: Clock, hook_server
) -> None:  # type: ignore[no-untyped-def]
    url, received, statuses = hook_server
    async with sessions() as session, session.begin():
        session.add(
            Rule(name="hook", trigger="message_received", actions=[{"type": "webhook", "url": url}])
        )
    result = await receive(sessions, telegram_message("Заказ 12345", 1))
    for event in result.events:
        await engine.handle(event)

    statuses.append(503)
    async with aiohttp.ClientSession() as http:
        worker = OutboxWorker(sessions, [WebhookSender(http)], now=clock)
        assert await worker.run_once() == 1
        [row] = await outbox_rows(sessions)
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
        clock.advance(seconds=2)
        assert await worker.run_once() == 1
    [row] = await outbox_rows(sessions)
    assert row.status is OutboxStatus.SENT
    assert received[0] == received[1]
    assert received[0]["rule"] == "hook" and received[0]["ticket_id"] == result.ticket.id
    assert received[0]["event"] == f"msg:{result.interaction.id}"


async def test_a_rejected_webhook_is_given_up(hook_server) -> None:  # type: ignore[no-untyped-def]
    url, _, statuses = hook_server
    statuses.append(404)
    item = Outbox(channel="webhook", recipient=url, payload={"url": url, "body": {}})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(PermanentFailure, match="HTTP 404"):
            await WebhookSender(http).send(item)


def test_the_automation_refuses_to_start_without_the_session_key() -> None:
    with pytest.raises(ConfigError, match="session_key"):
        automation_config(Settings())
    config = automation_config(Settings(session_key=SECRET, web_port=8081))
    assert config.public_url == "http://127.0.0.1:8081"


async def _wait_for(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_run_automation_applies_rules_to_bus_events_and_fires_timers(
    sessions: async_sessionmaker[AsyncSession], engine: Engine, clock: Clock
) -> None:
    bus, stop = Bus(), asyncio.Event()
    task = asyncio.create_task(
        run_automation(Settings(session_key=SECRET), sessions, bus, stop, now=clock)
    )
    try:
        await make_customer(sessions, email="ivan@example.ru", telegram=7001)
        for event in (await receive(sessions, telegram_message("Где заказ?", 1))).events:
            bus.publish(event)
        await bus.drain()

        async def rows(n: int) -> bool:
            return len(await outbox_rows(sessions)) == n

        await _wait_for(lambda: rows(1))  # the acknowledgement
        clock.advance(hours=2)
        await _wait_for(lambda: rows(3))  # the apology email and the call offer
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [row.channel for row in await outbox_rows(sessions)] == ["email", "email", "telegram"]

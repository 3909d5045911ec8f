"""/metrics for Prometheus: closed without the token, figures from the live state and the DB."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.health import HealthRegistry
from callcenter.models import Channel, Customer, Ticket
from callcenter.outbox import enqueue
from callcenter.web.app import create_app
from callcenter.web.keys import WALLBOARD

TOKEN = "scrape-token-" + "t" * 20
BOARD = {
    "queues": [
        {"name": "support", "waiting": 2, "longest_wait": 75, "answered": 10, "abandoned": 1,
         "logged_in": 3, "available": 1, "service_level": 80.0},
    ],
    "agents": [{"state": "available"}, {"state": "on_call"}, {"state": "on_call"}],
}  # fmt: skip


class FakeWallboard:
    def snapshot(self) -> dict[str, Any]:
        return BOARD


async def test_metrics_need_the_token_and_show_queues_agents_backlog_and_health(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session, session.begin():
        customer = Customer(display_name="Иван")
        session.add(customer)
        await session.flush()
        session.add(Ticket(customer_id=customer.id, channel=Channel.TELEGRAM, subject="Где заказ?"))
        enqueue(session, channel="email", recipient="ivan@example.com", payload={"text": "x"})
    health = HealthRegistry()
    health.report_ok("database")
    health.report_failure("smtp", "connection refused")
    settings = Settings(database_url=database_url, session_key="k" * 40, metrics_token=TOKEN)
    app = create_app(settings, health=health)
    app[WALLBOARD] = FakeWallboard()  # type: ignore[assignment]
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status == 200
        text = await response.text()
    for line in (
        'callcenter_queue_callers_waiting{queue="support"} 2.0',
        'callcenter_queue_longest_wait_seconds{queue="support"} 75.0',
        'callcenter_queue_service_level_ratio{queue="support"} 0.8',
        'callcenter_agents{state="on_call"} 2.0',
        'callcenter_tickets_awaiting_first_answer{channel="telegram"} 1.0',
        'callcenter_tickets_awaiting_first_answer{channel="email"} 0.0',
        'callcenter_outbox_messages{channel="email",status="pending"} 1.0',
        'callcenter_component_up{component="database"} 1.0',
        'callcenter_component_up{component="smtp"} 0.0',
    ):
        assert line in text, line


async def test_metrics_are_closed_when_no_token_is_configured(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, session_key="k" * 40))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics", headers={"Authorization": "Bearer "})
        assert response.status == 401

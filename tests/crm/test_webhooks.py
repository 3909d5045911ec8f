"""Signed outgoing webhooks: the signature scheme, and events delivered through the outbox to a
receiver that verifies every request, retried after a failure, each attempt in the log."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.crm.feed import Feed
from callcenter.crm.models import WebhookDelivery, WebhookSubscription
from callcenter.crm.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers, verify
from callcenter.crm.webhooks import SignedWebhookSender
from callcenter.health import HealthRegistry, State
from callcenter.models import OutboxStatus, utcnow
from callcenter.outbox import OutboxWorker
from tests.automation.helpers import Clock, outbox_rows, receive, telegram_message
from tests.crm.fakes import Receiver

SECRET = "whsec_test_0123456789"


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_fresh_timestamp() -> None:
    body = b'{"type":"ticket.created","data":{"ticket":{"id":1}}}'
    headers = signed_headers(SECRET, body, now=1_764_291_600)
    ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]

    assert ts == "1764291600" and sig.startswith("v1=") and len(sig) == 3 + 64
    assert verify(SECRET, body, ts, sig, now=1_764_291_650)
    assert not verify(SECRET, body.replace(b"1}", b"2}"), ts, sig, now=1_764_291_650)
    assert not verify("whsec_other", body, ts, sig, now=1_764_291_650)
    assert not verify(SECRET, body, ts, sig, now=1_764_291_600 + 301)  # a replay, too late
    assert not verify(SECRET, body, "1764291601", sig, now=1_764_291_650)  # timestamp is signed
    assert not verify(SECRET, body, ts, "", now=1_764_291_650)


async def subscribe(
    sessions: async_sessionmaker[AsyncSession], url: str, events: list[str], active: bool = True
) -> int:
    async with sessions() as session, session.begin():
        row = WebhookSubscription(url=url, secret=SECRET, events=events, active=active)
        session.add(row)
        await session.flush()
        return row.id


async def publish(sessions: async_sessionmaker[AsyncSession], feed: Feed, text: str, n: int):  # type: ignore[no-untyped-def]
    bus = Bus()
    feed.subscribe(bus)
    result = await receive(sessions, telegram_message(text, n))
    for event in result.events:
        bus.publish(event)
    await bus.drain()
    return result


async def test_events_reach_a_verifying_receiver_with_retries_and_a_delivery_log(
    sessions: async_sessionmaker[AsyncSession], receiver: tuple[Receiver, str], http
) -> None:  # type: ignore[no-untyped-def]
    hook, url = receiver
    hook.secret = SECRET
    wanted = await subscribe(sessions, url, ["ticket.created"])
    await subscribe(sessions, url, ["ticket.solved"])  # not this event
    await subscribe(sessions, url, ["ticket.created"], active=False)

    result = await publish(sessions, Feed(sessions, crm=False), "Где заказ 12345?", 1)
    clock = Clock(utcnow())

    [row] = await outbox_rows(sessions)
    assert row.channel == "signed_webhook" and row.recipient == f"subscription:{wanted}"
    health = HealthRegistry()
    sender = SignedWebhookSender(http, sessions, health=health, now=clock)
    worker = OutboxWorker(sessions, [sender], now=clock)
    hook.statuses.append(503)
    assert await worker.run_once() == 1
    [row] = await outbox_rows(sessions)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert {h.name: h.state for h in health.snapshot()}["webhooks"] is State.FAILING

    clock.advance(seconds=2)
    assert await worker.run_once() == 1
    [row] = await outbox_rows(sessions)
    assert row.status is OutboxStatus.SENT
    assert {h.name: h.state for h in health.snapshot()}["webhooks"] is State.OK

    [delivered] = hook.accepted
    event = delivered["event"]
    assert event["type"] == "ticket.created" and event["id"].startswith("evt_")
    assert event["data"]["ticket"]["id"] == result.ticket.id
    assert event["data"]["customer"]["name"] == "Иван Петров"
    assert delivered["headers"]["X-Callcenter-Event"] == "ticket.created"
    assert delivered["headers"]["X-Callcenter-Event-Id"] == event["id"] == row.external_id
    assert abs(int(delivered["headers"][TIMESTAMP_HEADER]) - time.time()) < 120
    assert hook.rejected == []

    async with sessions() as session:
        log = list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    assert [(d.attempt, d.status_code, bool(d.error)) for d in log] == [
        (1, 503, True),
        (2, 204, False),
    ]
    assert {d.event_id for d in log} == {event["id"]}
    assert log[0].at == clock.at - timedelta(seconds=2) and log[1].at == clock.at


async def test_a_tampered_body_is_rejected_and_a_wrong_secret_gives_up(
    sessions: async_sessionmaker[AsyncSession], receiver: tuple[Receiver, str], http
) -> None:  # type: ignore[no-untyped-def]
    hook, url = receiver
    hook.secret = SECRET
    body = json.dumps({"type": "ticket.solved", "data": {"ticket": {"id": 5}}}).encode()
    headers = signed_headers(SECRET, body)
    tampered = body.replace(b'"id": 5', b'"id": 6')
    async with http.post(url, data=tampered, headers=headers) as response:
        assert response.status == 400
    async with http.post(url, data=body, headers=headers) as response:
        assert response.status == 204
    assert hook.rejected == [tampered] and len(hook.accepted) == 1

    hook.secret = "whsec_the_receiver_has_another_one"
    await subscribe(sessions, url, ["message.received"])
    await publish(sessions, Feed(sessions, crm=False), "Привет", 2)
    worker = OutboxWorker(sessions, [SignedWebhookSender(http, sessions, health=HealthRegistry())])
    assert await worker.run_once() == 1
    [row] = await outbox_rows(sessions)
    assert row.status is OutboxStatus.FAILED and "HTTP 400" in row.last_error
    assert len(hook.rejected) == 2


async def test_the_delivery_log_keeps_thirty_days(
    sessions: async_sessionmaker[AsyncSession], receiver: tuple[Receiver, str], http
) -> None:  # type: ignore[no-untyped-def]
    hook, url = receiver
    hook.secret = SECRET
    subscription = await subscribe(sessions, url, ["ticket.created"])
    now = utcnow()
    async with sessions() as session, session.begin():
        for age in (31, 29):
            session.add(
                WebhookDelivery(
                    subscription_id=subscription,
                    outbox_id=0,
                    event_id=f"evt_{age}",
                    event_type="ticket.created",
                    attempt=1,
                    at=now - timedelta(days=age),
                )
            )
    await publish(sessions, Feed(sessions, crm=False), "Вопрос", 3)
    sender = SignedWebhookSender(http, sessions, health=HealthRegistry(), now=lambda: now)
    assert await OutboxWorker(sessions, [sender]).run_once() == 1

    async with sessions() as session:
        kept = list(await session.scalars(select(WebhookDelivery.event_id)))
    assert "evt_31" not in kept and "evt_29" in kept and len(kept) == 2

"""Signed outgoing webhooks: admins subscribe a URL to events; each event becomes one outbox row
per subscription, POSTed as JSON with a signature (see ``signing``) and retried with backoff
by the outbox; every attempt is written to the delivery log."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.webhook import HttpRefused, HttpRetry, json_bytes, post
from callcenter.crm.models import WebhookDelivery, WebhookSubscription
from callcenter.crm.once import enqueue_once
from callcenter.crm.signing import signed_headers
from callcenter.health import HealthRegistry, registry
from callcenter.models import Outbox, utcnow
from callcenter.outbox import PermanentFailure

EVENTS = ("ticket.created", "message.received", "call.ended", "ticket.solved")
CHANNEL = "signed_webhook"
EVENT_HEADER = "X-Callcenter-Event"
ID_HEADER = "X-Callcenter-Event-Id"
LOG_RETENTION = timedelta(days=30)
PRUNE_SECONDS = 3600.0


async def enqueue_event(
    session: AsyncSession,
    event_type: str,
    key: str,
    data: dict[str, Any],
    at: datetime,
    *,
    ticket_id: int | None = None,
    customer_id: int | None = None,
) -> int:
    """Queue the event for every active subscription to it, once per (subscription, event
    type, ``key``); how many were queued. The event id is derived from the same key, so a
    receiver can tell a repeat too."""
    subscriptions = await session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
    )
    queued = 0
    for subscription in subscriptions:
        if event_type not in (subscription.events or []):
            continue
        dedupe = f"webhook:{subscription.id}:{event_type}:{key}"
        event = {
            "id": f"evt_{hashlib.sha256(dedupe.encode()).hexdigest()[:32]}",
            "type": event_type,
            "created_at": at.isoformat(),
            "data": data,
        }
        recipient = f"subscription:{subscription.id}"
        if customer_id is not None and ticket_id is None:
            recipient += f":customer:{customer_id}"  # so that erasing the customer finds it
        queued += await enqueue_once(
            session,
            dedupe,
            channel=CHANNEL,
            recipient=recipient,
            payload={"subscription_id": subscription.id, "event": event},
            ticket_id=ticket_id,  # so that erasing the customer clears the row
        )
    return queued


class SignedWebhookSender:
    channel = CHANNEL

    def __init__(
        self,
        http: aiohttp.ClientSession,
        sessions: async_sessionmaker[AsyncSession],
        *,
        health: HealthRegistry = registry,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.http = http
        self.sessions = sessions
        self.health = health
        self.now = now
        self._pruned_at: float | None = None

    async def send(self, item: Outbox) -> str | None:
        event = item.payload["event"]
        async with self.sessions() as session:
            subscription = await session.get(WebhookSubscription, item.payload["subscription_id"])
        if subscription is None or not subscription.active:
            raise PermanentFailure("the webhook subscription was removed or switched off")
        body = json_bytes(event)
        headers = {
            **signed_headers(subscription.secret, body),
            EVENT_HEADER: event["type"],
            ID_HEADER: event["id"],
        }
        started = time.perf_counter()
        status: int | None = None
        error = ""
        try:
            status = await post(self.http, subscription.url, body, headers)
        except (HttpRetry, HttpRefused) as exc:
            status, error = exc.status, str(exc)
            raise
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            raise
        finally:
            await self._log(item, subscription.id, event, status, error, started)
        return event["id"]

    async def _log(
        self,
        item: Outbox,
        subscription_id: int,
        event: dict[str, Any],
        status: int | None,
        error: str,
        started: float,
    ) -> None:
        if error:
            self.health.report_failure("webhooks", error)
        else:
            self.health.report_ok("webhooks")
        async with self.sessions() as session, session.begin():
            session.add(
                WebhookDelivery(
                    subscription_id=subscription_id,
                    outbox_id=item.id,
                    event_id=event["id"],
                    event_type=event["type"],
                    attempt=item.attempts + 1,
                    status_code=status,
                    error=error[:2000],
                    duration_ms=round((time.perf_counter() - started) * 1000),
                    at=self.now(),
                )
            )
            if self._pruned_at is None or time.monotonic() - self._pruned_at > PRUNE_SECONDS:
                self._pruned_at = time.monotonic()
                await session.execute(
                    delete(WebhookDelivery).where(WebhookDelivery.at < self.now() - LOG_RETENTION)
                )

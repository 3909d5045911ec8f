"""Admin: outgoing webhook subscriptions (URL, events, signing secret) and the delivery log.

A signing secret is shown once, on the page answering its creation or rotation; after that only
its last characters. A failed delivery can be sent again from the log."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import ColumnElement, delete, or_, select, update

from callcenter.crm.models import WebhookDelivery, WebhookSubscription
from callcenter.crm.signing import new_secret
from callcenter.crm.webhooks import CHANNEL, EVENTS
from callcenter.db import unit_of_work
from callcenter.domain.audit import record
from callcenter.models import Outbox, OutboxStatus, utcnow
from callcenter.web.access import ADMINS, allow
from callcenter.web.keys import SESSIONS
from callcenter.web.render import error_page, redirect, render
from callcenter.web.session import require_user

routes = web.RouteTableDef()
LOG_PAGE = 100


def _valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(url) <= 2000


async def _page(
    request: web.Request,
    status: int = 200,
    error: str | None = None,
    form: dict | None = None,
    revealed: WebhookSubscription | None = None,
) -> web.Response:
    shown = request.query.get("subscription", "")
    log_query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(LOG_PAGE)
    if shown.isdigit():
        log_query = log_query.where(WebhookDelivery.subscription_id == int(shown))
    async with request.app[SESSIONS]() as db:
        subscriptions = list(
            await db.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
        )
        deliveries = list(await db.scalars(log_query))
        given_up = set(
            await db.scalars(
                select(Outbox.id).where(
                    Outbox.id.in_({d.outbox_id for d in deliveries}),
                    Outbox.status == OutboxStatus.FAILED,
                    Outbox.recipient != "",  # not erased
                )
            )
        )
    context = {
        "subscriptions": subscriptions,
        "deliveries": deliveries,
        "events": EVENTS,
        "shown": int(shown) if shown.isdigit() else None,
        "error": error,
        "form": form or {},
        "revealed": revealed,
        "given_up": given_up,
    }
    return render(request, "admin_webhooks.html", context, status=status)


@routes.get("/admin/webhooks")
@allow(*ADMINS)
async def webhooks(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/admin/webhooks")
@allow(*ADMINS)
async def create_webhook(request: web.Request) -> web.Response:
    admin = require_user(request)
    posted = await request.post()
    url = str(posted.get("url", "")).strip()
    events = [e for e in EVENTS if e in {str(v) for v in posted.getall("events", [])}]
    description = str(posted.get("description", "")).strip()[:200]
    form = {"url": url, "events": events, "description": description}
    if not _valid_url(url):
        return await _page(request, 400, "webhooks.bad_url", form)
    if not events:
        return await _page(request, 400, "webhooks.no_events", form)
    async with unit_of_work(request.app[SESSIONS]) as db:
        subscription = WebhookSubscription(
            url=url, secret=new_secret(), events=events, description=description
        )
        db.add(subscription)
        await db.flush()
        record(
            db,
            "webhook.create",
            actor=admin,
            target_type="webhook",
            target_id=subscription.id,
            details={"url": url, "events": events},
        )
    return await _page(request, revealed=subscription)


@routes.post(r"/admin/webhooks/{subscription_id:\d+}/active")
@allow(*ADMINS)
async def set_webhook_active(request: web.Request) -> web.Response:
    admin = require_user(request)
    active = (await request.post()).get("active") == "1"
    async with unit_of_work(request.app[SESSIONS]) as db:
        subscription = await db.get(WebhookSubscription, int(request.match_info["subscription_id"]))
        if subscription is None:
            return error_page(request, 404, "errors.not_found")
        subscription.active = active
        record(
            db,
            "webhook.activate" if active else "webhook.deactivate",
            actor=admin,
            target_type="webhook",
            target_id=subscription.id,
        )
    return redirect("/admin/webhooks")


@routes.post(r"/admin/webhooks/{subscription_id:\d+}/rotate")
@allow(*ADMINS)
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    """A new signing secret, shown once; the old one stops working at once."""
    admin = require_user(request)
    async with unit_of_work(request.app[SESSIONS]) as db:
        subscription = await db.get(WebhookSubscription, int(request.match_info["subscription_id"]))
        if subscription is None:
            return error_page(request, 404, "errors.not_found")
        subscription.secret = new_secret()
        record(db, "webhook.rotate", actor=admin, target_type="webhook", target_id=subscription.id)
    return await _page(request, revealed=subscription)


def _rows_of(subscription_id: int) -> tuple[ColumnElement[bool], ...]:
    """The subscription's outbox rows (``subscription:<id>``, or with ``:customer:<id>``)."""
    recipient = f"subscription:{subscription_id}"
    return (
        Outbox.channel == CHANNEL,
        or_(Outbox.recipient == recipient, Outbox.recipient.like(f"{recipient}:%")),
    )


@routes.post(r"/admin/webhooks/{subscription_id:\d+}/delete")
@allow(*ADMINS)
async def delete_webhook(request: web.Request) -> web.Response:
    """The subscription, its delivery log and its undelivered events go."""
    admin = require_user(request)
    subscription_id = int(request.match_info["subscription_id"])
    async with unit_of_work(request.app[SESSIONS]) as db:
        subscription = await db.get(WebhookSubscription, subscription_id)
        if subscription is None:
            return error_page(request, 404, "errors.not_found")
        await db.execute(
            update(Outbox)
            .where(*_rows_of(subscription_id), Outbox.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.FAILED, last_error="the subscription was deleted")
        )
        await db.execute(
            delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        )
        await db.delete(subscription)
        record(
            db,
            "webhook.delete",
            actor=admin,
            target_type="webhook",
            target_id=subscription_id,
            details={"url": subscription.url},
        )
    return redirect("/admin/webhooks")


@routes.post(r"/admin/webhooks/deliveries/{delivery_id:\d+}/redeliver")
@allow(*ADMINS)
async def redeliver(request: web.Request) -> web.Response:
    """Send a delivery's event again: its outbox row, given up on, is queued afresh."""
    admin = require_user(request)
    async with unit_of_work(request.app[SESSIONS]) as db:
        delivery = await db.get(WebhookDelivery, int(request.match_info["delivery_id"]))
        item = await db.get(Outbox, delivery.outbox_id) if delivery else None
        if delivery is None or item is None or item.channel != CHANNEL:
            return error_page(request, 404, "errors.not_found")
        if item.status is not OutboxStatus.FAILED or not item.payload:
            return error_page(request, 409, "webhooks.not_failed")  # queued, sent or erased
        item.status, item.attempts, item.last_error = OutboxStatus.PENDING, 0, ""
        item.next_attempt_at, item.locked_until = utcnow(), None
        record(
            db,
            "webhook.redeliver",
            actor=admin,
            target_type="webhook",
            target_id=delivery.subscription_id,
            details={"event_id": delivery.event_id, "outbox_id": item.id},
        )
    return redirect(f"/admin/webhooks?subscription={delivery.subscription_id}")

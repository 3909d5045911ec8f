"""Admin: outgoing webhook subscriptions (URL, events, signing secret) and the delivery log."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select

from callcenter.crm.models import WebhookDelivery, WebhookSubscription
from callcenter.crm.signing import new_secret
from callcenter.crm.webhooks import EVENTS
from callcenter.db import unit_of_work
from callcenter.domain.audit import record
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
    request: web.Request, status: int = 200, error: str | None = None, form: dict | None = None
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
    context = {
        "subscriptions": subscriptions,
        "deliveries": deliveries,
        "events": EVENTS,
        "shown": int(shown) if shown.isdigit() else None,
        "error": error,
        "form": form or {},
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
    return redirect("/admin/webhooks")


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

"""A customer's page (identities, then the workspace from views.tickets), the sandboxed email
body, export and erasure."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from sqlalchemy import select

from callcenter.channels.email.sanitize import sanitize_html
from callcenter.db import unit_of_work
from callcenter.domain.customers import get_customer
from callcenter.domain.errors import NotFound
from callcenter.domain.privacy import ERASED, erase_customer, export_customer, remove_files
from callcenter.models import Identity, Interaction
from callcenter.web.access import ADMINS, EVERYONE, SUPERVISORS, allow
from callcenter.web.keys import SESSIONS, SETTINGS
from callcenter.web.render import error_page, redirect, render
from callcenter.web.session import require_user
from callcenter.web.views.tickets import workspace

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# The email body document: no script at all, styles only inline (from the sanitised markup),
# images only embedded unless the agent asked for remote ones. Framable only by our pages.
_BODY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src {images}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
_REMOTE_SRC = 'data-remote-src="'


def _customer_id(request: web.Request) -> int:
    try:
        return int(request.match_info["customer_id"])
    except ValueError:
        raise web.HTTPNotFound() from None


@routes.get(r"/customers/{customer_id:\d+}")
@allow(*EVERYONE)
async def customer_page(request: web.Request) -> web.Response:
    wanted = _customer_id(request)
    async with request.app[SESSIONS]() as db:
        try:
            customer = await get_customer(db, wanted)
        except NotFound:
            return error_page(request, 404, "errors.no_customer")
        if customer.id != wanted:
            return redirect(f"/customers/{customer.id}", 302)
        identities = list(
            await db.scalars(
                select(Identity).where(Identity.customer_id == customer.id).order_by(Identity.id)
            )
        )
        threads = await workspace(db, customer, identities)
    return render(
        request,
        "customer.html",
        {
            "customer": customer,
            "identities": identities,
            "erased_marker": ERASED,
            **threads,
        },
    )


@routes.get(r"/interactions/{interaction_id:\d+}/body")
@allow(*EVERYONE)
async def email_body(request: web.Request) -> web.Response:
    """The sanitised HTML of one email, for a sandboxed iframe on the customer page."""
    async with request.app[SESSIONS]() as db:
        item = await db.get(Interaction, int(request.match_info["interaction_id"]))
    if item is None or not item.html:
        raise web.HTTPNotFound()
    safe, _ = sanitize_html(item.html)
    images = request.query.get("images") == "1"
    if images:
        safe = safe.replace(_REMOTE_SRC, 'src="')
    response = render(request, "email_body.html", {"body": safe})
    response.headers["Content-Security-Policy"] = _BODY_POLICY.format(
        images="data: https: http:" if images else "data:"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@routes.get(r"/customers/{customer_id:\d+}/export.json")
@allow(*SUPERVISORS)
async def export(request: web.Request) -> web.Response:
    user = require_user(request)
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            data = await export_customer(
                db, _customer_id(request), actor=user, data_dir=request.app[SETTINGS].data_dir
            )
    except NotFound:
        return error_page(request, 404, "errors.no_customer")
    body = json.dumps(data, ensure_ascii=False, indent=1, default=str)
    return web.Response(
        text=body,
        content_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{data["customer"]["id"]}.json"',
            "Cache-Control": "no-store",
        },
    )


@routes.post(r"/customers/{customer_id:\d+}/erase")
@allow(*ADMINS)
async def erase(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    wanted = _customer_id(request)
    if form.get("confirm") != str(wanted):
        return error_page(request, 400, "customer.erase_confirm_missing")
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            erasure = await erase_customer(
                db, wanted, actor=user, data_dir=request.app[SETTINGS].data_dir
            )
    except NotFound:
        return error_page(request, 404, "errors.no_customer")
    left = remove_files(erasure.files, request.app[SETTINGS].data_dir)
    if left:
        log.error("customer %s erased but files remain: %s", erasure.customer_id, left)
    return redirect(f"/customers/{erasure.customer_id}")

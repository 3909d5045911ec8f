"""An unknown caller's number: link it to an existing customer, or make a new profile."""

from __future__ import annotations

from aiohttp import web

from callcenter.db import unit_of_work
from callcenter.domain import audit
from callcenter.domain.customers import attach_identity, create_customer, get_customer
from callcenter.domain.errors import DomainError
from callcenter.models import IdentityKind
from callcenter.web.access import EVERYONE, allow
from callcenter.web.keys import SESSIONS, SETTINGS
from callcenter.web.render import error_page, redirect
from callcenter.web.session import require_user

routes = web.RouteTableDef()


@routes.post("/callers/link")
@allow(*EVERYONE)
async def link_number(request: web.Request) -> web.StreamResponse:
    """Attach the caller's number to a customer chosen by id, or to a new customer."""
    user = require_user(request)
    form = await request.post()
    phone = str(form.get("phone", ""))
    target = str(form.get("customer_id", "")).strip()
    region = request.app[SETTINGS].default_region
    try:
        async with unit_of_work(request.app[SESSIONS]) as session:
            if target:
                if not target.isdigit():
                    raise web.HTTPBadRequest(text="customer_id must be a number")
                customer = await get_customer(session, int(target))
            else:
                name = str(form.get("name", "")).strip()[:200]
                customer = await create_customer(session, name)
            identity = await attach_identity(
                session, customer, IdentityKind.PHONE, phone, source="agent", region=region
            )
            audit.record(
                session,
                "customer.link_phone",
                actor=user,
                target_type="customer",
                target_id=customer.id,
                details={"phone": identity.value, "new_customer": not target},
            )
            customer_id = customer.id
    except DomainError as exc:
        return error_page(request, 400, "errors.refused", detail=exc.message)
    return redirect(f"/customers/{customer_id}", 303)

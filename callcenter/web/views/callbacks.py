"""The callback list: what the dialler has to call, is calling and has called (every role)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from callcenter.automation.callbacks import recent_callbacks
from callcenter.models import Customer
from callcenter.web.access import EVERYONE, allow
from callcenter.web.keys import SESSIONS
from callcenter.web.render import render

routes = web.RouteTableDef()


@routes.get("/callbacks")
@allow(*EVERYONE)
async def callbacks_page(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        callbacks = await recent_callbacks(db)
        ids = {callback.customer_id for callback in callbacks}
        names = (
            dict(
                (
                    await db.execute(
                        select(Customer.id, Customer.display_name).where(Customer.id.in_(ids))
                    )
                ).all()
            )
            if ids
            else {}
        )
    return render(request, "callbacks.html", {"callbacks": callbacks, "names": names})

"""The callback list: what the dialler has to call, is calling and has called (every role).

It updates live: every ``CallbackChanged`` on the bus (created, claimed, done, failed) is
pushed as a ``callback`` event to everyone's event stream, and the page fetches its rows
again (``/callbacks/rows``, rendered and escaped here like the page itself)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from sqlalchemy import select

from callcenter.automation.callbacks import CallbackChanged, recent_callbacks
from callcenter.bus import Bus
from callcenter.models import Customer, Role
from callcenter.web.access import EVERYONE, allow
from callcenter.web.keys import SESSIONS
from callcenter.web.render import render
from callcenter.web.streams import Hub

routes = web.RouteTableDef()
EVENT = "callback"


def push_callback_changes(bus: Bus, hub: Hub) -> Callable[[], None]:
    """Tell every signed-in user's stream about each callback change; returns unsubscribe."""

    async def push(change: CallbackChanged) -> None:
        data = {"id": change.callback_id, "status": change.status.value}
        for role in Role:
            hub.publish_to_role(role, EVENT, data)

    return bus.subscribe(CallbackChanged, push)


async def _listed(request: web.Request) -> dict[str, object]:
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
    return {"callbacks": callbacks, "names": names}


@routes.get("/callbacks")
@allow(*EVERYONE)
async def callbacks_page(request: web.Request) -> web.Response:
    return render(request, "callbacks.html", await _listed(request))


@routes.get("/callbacks/rows")
@allow(*EVERYONE)
async def callbacks_rows(request: web.Request) -> web.Response:
    """The list's rows alone, for the page to refresh itself when a callback changes."""
    return render(request, "callbacks_rows.html", await _listed(request))

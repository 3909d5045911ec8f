"""The supervisor's page: for now the list of agents; the live dashboard comes later."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from callcenter.models import Role, User
from callcenter.web.access import SUPERVISORS, allow
from callcenter.web.keys import HUB, SESSIONS
from callcenter.web.render import render

routes = web.RouteTableDef()


@routes.get("/supervisor")
@allow(*SUPERVISORS)
async def supervisor_home(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        agents = list(
            await db.scalars(select(User).where(User.role == Role.AGENT).order_by(User.username))
        )
    online = {c.user_id for c in request.app[HUB].connections()}
    return render(request, "supervisor.html", {"agents": agents, "online": online})

"""``GET /events``: the signed-in user's own event stream (server-sent events).

Supervisors and admins may also open an agent's stream (``/events/users/{id}``), for
listening in; an agent asking for anyone else's stream is refused.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.models import Role, User
from callcenter.web.access import EVERYONE, allow
from callcenter.web.keys import HUB, SESSIONS
from callcenter.web.render import error_page
from callcenter.web.session import require_user
from callcenter.web.streams import pump

routes = web.RouteTableDef()


async def _stream(
    request: web.Request, user_id: int, role: Role, viewer_id: int
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    transport = request.transport

    def abort() -> None:
        if transport is not None:
            transport.abort()

    hub = request.app[HUB]
    conn = hub.connect(user_id, role, abort, viewer_id)
    try:
        await response.prepare(request)
        await response.write(b"retry: 5000\n\n")
        await pump(conn, response.write)
    except ConnectionError:
        pass  # the browser went away or was dropped for not reading
    finally:
        hub.disconnect(conn)
    return response


@routes.get("/events")
@allow(*EVERYONE)
async def own_events(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    return await _stream(request, user.id, user.role, user.id)


@routes.get(r"/events/users/{user_id:\d+}")
@allow(*EVERYONE)
async def user_events(request: web.Request) -> web.StreamResponse:
    viewer = require_user(request)
    user_id = int(request.match_info["user_id"])
    if viewer.id != user_id and viewer.role is Role.AGENT:
        return error_page(request, 403, "errors.forbidden")
    async with request.app[SESSIONS]() as db:
        target = await db.get(User, user_id)
    if target is None:
        return error_page(request, 404, "errors.not_found")
    return await _stream(request, target.id, target.role, viewer.id)

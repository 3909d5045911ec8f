"""``/metrics`` for Prometheus: readable with ``Authorization: Bearer <CALLCENTER_METRICS_TOKEN>``.

Scrapers carry no session, so the route is public to the session layer and checks its own
token; without a configured token it is closed.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from callcenter import metrics
from callcenter.web.access import public
from callcenter.web.keys import HEALTH, SESSIONS, SETTINGS, WALLBOARD

routes = web.RouteTableDef()


def _authorised(request: web.Request) -> bool:
    token = request.app[SETTINGS].metrics_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


@routes.get("/metrics")
@public
async def scrape(request: web.Request) -> web.Response:
    if not _authorised(request):
        return web.Response(
            status=401,
            text="metrics need Authorization: Bearer <CALLCENTER_METRICS_TOKEN>\n",
            headers={"WWW-Authenticate": "Bearer"},
        )
    async with request.app[SESSIONS]() as session:
        first_answer, outbox = await metrics.backlog(session)
    wallboard = request.app.get(WALLBOARD)
    board = wallboard.snapshot() if wallboard is not None else None
    body = metrics.render(board, request.app[HEALTH].snapshot(), first_answer, outbox)
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

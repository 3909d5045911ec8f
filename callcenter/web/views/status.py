"""The admin status page: each external component ok or failing, with its last error."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from callcenter.health import HealthRegistry
from callcenter.web.access import ADMINS, allow
from callcenter.web.keys import ENGINE, HEALTH
from callcenter.web.render import render

routes = web.RouteTableDef()


async def check_database(request: web.Request, health: HealthRegistry) -> None:
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure is what the page must show
        health.report_failure("database", exc)
    else:
        health.report_ok("database")


@routes.get("/status")
@allow(*ADMINS)
async def status(request: web.Request) -> web.StreamResponse:
    health = request.app[HEALTH]
    await check_database(request, health)
    items = health.snapshot()
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response(
            {
                i.name: {
                    "state": i.state.value,
                    "since": i.since.isoformat() if i.since else None,
                    "last_error": i.last_error,
                    "last_error_at": i.last_error_at.isoformat() if i.last_error_at else None,
                }
                for i in items
            },
            headers={"Cache-Control": "no-store"},
        )
    return render(request, "status.html", {"items": items})

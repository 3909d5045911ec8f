"""The admin status page: each external component ok or failing, with its last error."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select, text

from callcenter.health import HealthRegistry
from callcenter.models import Outbox, OutboxStatus
from callcenter.web.access import ADMINS, allow
from callcenter.web.keys import ENGINE, HEALTH, SESSIONS
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


async def outbox_backlog(request: web.Request) -> list[dict[str, object]]:
    """Per outbox channel: rows still waiting, rows given up, and the newest error."""
    backlog: dict[str, dict[str, object]] = {}
    async with request.app[SESSIONS]() as db:
        counts = await db.execute(
            select(Outbox.channel, Outbox.status, func.count())
            .where(Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.FAILED]))
            .group_by(Outbox.channel, Outbox.status)
        )
        for channel, status, count in counts:
            row = backlog.setdefault(channel, {"channel": channel, "pending": 0, "failed": 0})
            row[status.value] = count
        for channel, row in backlog.items():
            row["last_error"] = await db.scalar(
                select(Outbox.last_error)
                .where(Outbox.channel == channel, Outbox.last_error != "")
                .order_by(Outbox.id.desc())
                .limit(1)
            )
    return sorted(backlog.values(), key=lambda r: str(r["channel"]))


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
    backlog = await outbox_backlog(request)
    return render(request, "status.html", {"items": items, "backlog": backlog})

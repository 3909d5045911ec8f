"""The analytics pages for supervisors: filters, charts, tables and each table as CSV."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from callcenter.analytics.cells import cells, to_csv
from callcenter.analytics.figures import CHANNELS, Filters, Table
from callcenter.analytics.pages import PAGES, Page, page_charts
from callcenter.analytics.refresh import Calendar, refreshed_at
from callcenter.models import Queue, Role, User
from callcenter.web.access import SUPERVISORS, allow
from callcenter.web.i18n import translator
from callcenter.web.keys import SESSIONS, SETTINGS
from callcenter.web.render import language, render

routes = web.RouteTableDef()


def _seed(request: web.Request) -> int:
    """The audit's random draw: kept in the links so its CSV lists the same customers."""
    value = request.query.get("seed", "")
    return int(value) if value.isdigit() and len(value) < 12 else secrets.randbelow(10**9)


async def _figures(
    request: web.Request, page: Page
) -> tuple[Filters, int, list[Table], dict[str, Any]]:
    settings = request.app[SETTINGS]
    zone = ZoneInfo(settings.timezone)
    calendar = Calendar(zone)
    filters = Filters.parse(request.query, datetime.now(zone).date())
    seed = _seed(request)
    async with request.app[SESSIONS]() as db:
        tables = await page.load(db, calendar, filters, seed)
        users = list(await db.scalars(select(User).order_by(User.username)))
        queues = list(await db.scalars(select(Queue.name).order_by(Queue.name)))
        fresh = await refreshed_at(db)
    extra = {
        "zone": zone,
        "agents": {u.id: u.display_name or u.username for u in users},
        "agent_choices": [u for u in users if u.role == Role.AGENT],
        "queues": queues,
        "refreshed": fresh,
    }
    return filters, seed, tables, extra


def _page_handler(page: Page) -> Any:
    @allow(*SUPERVISORS)
    async def show(request: web.Request) -> web.Response:
        filters, seed, tables, extra = await _figures(request, page)
        t = translator(language(request))
        query = {**filters.query(), "seed": str(seed)}
        shown = [
            {
                "table": table,
                "cells": cells(table, t, extra["agents"], extra["zone"]),
                "csv": request.app.router["analytics_csv"]
                .url_for(page=page.name, table=table.name)
                .with_query(query),
            }
            for table in tables
        ]
        context = {
            "page": page.name,
            "pages": list(PAGES),
            "filters": filters,
            "applies": page.applies,
            "channels": CHANNELS,
            "charts": page_charts(page.name, tables, t),
            "tables": shown,
            "seed": seed,
            **extra,
        }
        return render(request, "analytics.html", context)

    show.__name__ = f"analytics_{page.name}"
    return show


for _page in PAGES.values():
    path = "/analytics" if _page.name == "overview" else f"/analytics/{_page.name}"
    routes.get(path)(_page_handler(_page))


@routes.get("/analytics/{page}/{table}.csv", name="analytics_csv")
@allow(*SUPERVISORS)
async def table_csv(request: web.Request) -> web.Response:
    page = PAGES.get(request.match_info["page"])
    if page is None:
        raise web.HTTPNotFound()
    _, _, tables, extra = await _figures(request, page)
    table = next((x for x in tables if x.name == request.match_info["table"]), None)
    if table is None:
        raise web.HTTPNotFound()
    t = translator(language(request))
    body = to_csv([t(c) for c in table.columns], cells(table, t, extra["agents"], extra["zone"]))
    return web.Response(
        text=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{page.name}-{table.name}.csv"'},
    )

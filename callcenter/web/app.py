"""Building the aiohttp application."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.db import create_engine, session_factory

ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])


async def healthz(request: web.Request) -> web.Response:
    """Liveness and database reachability, without details (no auth)."""
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure means "not healthy"
        return web.json_response({"status": "failing"}, status=503)
    return web.json_response({"status": "ok"})


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    engine = create_engine(settings.resolved_database_url)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    app.router.add_get("/healthz", healthz)

    async def _dispose(_: web.Application) -> None:
        await engine.dispose()

    app.on_cleanup.append(_dispose)
    return app

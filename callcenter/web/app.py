"""Building the aiohttp application: settings, database, templates, middleware, routes."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.bus import Bus
from callcenter.config import Settings
from callcenter.db import create_engine, session_factory
from callcenter.health import HealthRegistry, registry
from callcenter.web.access import public
from callcenter.web.cookies import SessionCodec
from callcenter.web.headers import add_security_headers
from callcenter.web.keys import BUS, CODEC, ENGINE, HEALTH, HUB, LIMITER, SESSIONS, SETTINGS
from callcenter.web.middleware import access_middleware
from callcenter.web.proxies import forwarded_middleware
from callcenter.web.ratelimit import LoginLimiter
from callcenter.web.render import STATIC, setup_templates
from callcenter.web.streams import Hub
from callcenter.web.views import (
    admin,
    agent,
    analytics,
    auth,
    callbacks,
    callers,
    classifier,
    customers,
    events,
    metrics,
    queues_admin,
    rules,
    status,
    supervisor,
    survey,
    tickets,
    webhooks,
    workspace,
)

__all__ = ["ENGINE", "SESSIONS", "create_app"]


@public
async def healthz(request: web.Request) -> web.Response:
    """Liveness and database reachability, without details (no auth)."""
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure means "not healthy"
        return web.json_response({"status": "failing"}, status=503)
    return web.json_response({"status": "ok"})


def create_app(
    settings: Settings,
    *,
    health: HealthRegistry = registry,
    limiter: LoginLimiter | None = None,
    engine: AsyncEngine | None = None,
    hub: Hub | None = None,
    bus: Bus | None = None,
) -> web.Application:
    """The web app; ConfigError (before anything starts) when there is no usable session key.

    ``engine``, ``hub`` and ``bus`` are shared with the rest of the process when given (``serve``);
    otherwise the app makes and owns its own.
    """
    codec = SessionCodec(settings.session_key)
    middlewares = [*forwarded_middleware(settings.trusted_proxies), access_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=2 * 1024**2)
    owns_engine = engine is None
    engine = engine or create_engine(settings.resolved_database_url)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    app[SETTINGS] = settings
    app[CODEC] = codec
    app[LIMITER] = limiter or LoginLimiter()
    app[HUB] = hub or Hub()
    app[BUS] = bus or Bus()
    app[HEALTH] = health
    setup_templates(app, settings.timezone)
    app.on_response_prepare.append(add_security_headers)

    app.router.add_get("/healthz", healthz)
    for module in (
        auth,
        agent,
        callbacks,
        callers,
        customers,
        supervisor,
        analytics,
        admin,
        rules,
        classifier,
        queues_admin,
        status,
        events,
        metrics,
        survey,
        tickets,
        workspace,
        webhooks,
    ):
        app.router.add_routes(module.routes)
    app.router.add_static("/static", STATIC)

    async def _close_streams(app: web.Application) -> None:
        app[HUB].close_all()

    async def _dispose(_: web.Application) -> None:
        await engine.dispose()

    app.on_shutdown.append(_close_streams)
    if owns_engine:
        app.on_cleanup.append(_dispose)
    return app

"""Signing in and out."""

from __future__ import annotations

import logging

from aiohttp import web

from callcenter.db import unit_of_work
from callcenter.domain import audit
from callcenter.models import Role, User
from callcenter.web.access import EVERYONE, allow, public
from callcenter.web.accounts import check_password, end_all_sessions
from callcenter.web.cookies import SessionCodec
from callcenter.web.i18n import LANGUAGES
from callcenter.web.keys import CODEC, HUB, LIMITER, SESSIONS
from callcenter.web.render import redirect, render
from callcenter.web.session import current_user, require_user, signed_in

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

HOME = {Role.AGENT: "/agent", Role.SUPERVISOR: "/supervisor", Role.ADMIN: "/admin/users"}


def safe_next(target: str | None, user: User) -> str:
    """Only a path on this site; ``//host`` and ``/\\host`` would leave it."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return HOME[user.role]


def _login_form(request: web.Request, status: int = 200, **context: object) -> web.Response:
    defaults = {"error": None, "username": "", "next": request.query.get("next", "")}
    return render(request, "login.html", {**defaults, **context}, status=status)


@routes.get("/login")
@public
async def login_page(request: web.Request) -> web.Response:
    user = current_user(request)
    if user is not None:
        return redirect(HOME[user.role])
    return _login_form(request)


@routes.post("/login")
@public
async def login(request: web.Request) -> web.Response:
    form = await request.post()
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:1024]
    target = str(form.get("next", ""))
    address = request.remote or "unknown"
    limiter = request.app[LIMITER]
    wait = limiter.retry_after(username, address)
    if wait:
        log.warning("login refused for %r from %s: too many failures", username, address)
        return _login_form(
            request, 429, error=("login.too_many", wait), username=username, next=target
        )
    async with unit_of_work(request.app[SESSIONS]) as db:
        user = await check_password(db, username, password)
        if user is None:
            audit.record(
                db,
                "user.login_failed",
                actor_name=username or "-",
                details={"address": address},
            )
        else:
            audit.record(
                db, "user.login", actor=user, target_type="user", target_id=user.id,
                details={"address": address},
            )  # fmt: skip
    if user is None:
        limiter.failed(username, address)
        return _login_form(request, 401, error=("login.failed", 0), username=username, next=target)
    limiter.succeeded(username)
    response = redirect(safe_next(target, user))
    request.app[CODEC].save(request, response, signed_in(user))
    return response


@routes.post("/logout")
@allow(*EVERYONE)
async def logout(request: web.Request) -> web.Response:
    response = redirect("/login")
    SessionCodec.clear(response)
    return response


@routes.post("/logout/everywhere")
@allow(*EVERYONE)
async def logout_everywhere(request: web.Request) -> web.Response:
    """Bump the session epoch: every cookie of this user, on every device, stops working."""
    user = require_user(request)
    async with unit_of_work(request.app[SESSIONS]) as db:
        fresh = await db.get(User, user.id)
        assert fresh is not None
        await end_all_sessions(db, fresh, actor=fresh)
    request.app[HUB].close_user(user.id)
    response = redirect("/login")
    SessionCodec.clear(response)
    return response


@routes.post("/me/language")
@allow(*EVERYONE)
async def set_language(request: web.Request) -> web.Response:
    user = require_user(request)
    lang = str((await request.post()).get("language", ""))
    if lang in LANGUAGES:
        async with unit_of_work(request.app[SESSIONS]) as db:
            fresh = await db.get(User, user.id)
            assert fresh is not None
            fresh.language = lang
    back = request.headers.get("Referer", "")
    return redirect(safe_next(back.removeprefix(f"{request.scheme}://{request.host}"), user))

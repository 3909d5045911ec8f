"""Administration: staff accounts and the audit log."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from callcenter.db import unit_of_work
from callcenter.domain.users import InvalidUser, add_user
from callcenter.models import AuditLog, Role, User
from callcenter.web.access import ADMINS, allow
from callcenter.web.accounts import set_active
from callcenter.web.i18n import LANGUAGES
from callcenter.web.keys import HUB, SESSIONS
from callcenter.web.render import error_page, redirect, render
from callcenter.web.session import require_user

routes = web.RouteTableDef()
AUDIT_PAGE = 100


async def _users_page(
    request: web.Request, status: int = 200, error: str | None = None, form: dict | None = None
) -> web.Response:
    async with request.app[SESSIONS]() as db:
        users = list(await db.scalars(select(User).order_by(User.role, User.username)))
    context = {
        "users": users,
        "roles": [r.value for r in Role],
        "languages": LANGUAGES,
        "error": error,
        "form": form or {},
    }
    return render(request, "admin_users.html", context, status=status)


@routes.get("/admin/users")
@allow(*ADMINS)
async def users(request: web.Request) -> web.Response:
    return await _users_page(request)


@routes.post("/admin/users")
@allow(*ADMINS)
async def create_user(request: web.Request) -> web.Response:
    admin = require_user(request)
    form = {k: str(v) for k, v in (await request.post()).items() if k != "password"}
    password = str((await request.post()).get("password", ""))
    role = form.get("role", "")
    if role not in {r.value for r in Role} or form.get("language") not in LANGUAGES:
        return await _users_page(request, 400, "admin.bad_role", form)
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            await add_user(
                db,
                form.get("username", "").strip(),
                Role(role),
                password,
                endpoint=form.get("endpoint", "").strip() or None,
                display_name=form.get("display_name", "").strip()[:200],
                language=form["language"],
                actor_name=admin.username,
            )
    except InvalidUser as exc:
        return await _users_page(request, 400, exc.message, form)
    return redirect("/admin/users")


@routes.post(r"/admin/users/{user_id:\d+}/active")
@allow(*ADMINS)
async def set_user_active(request: web.Request) -> web.Response:
    admin = require_user(request)
    active = (await request.post()).get("active") == "1"
    user_id = int(request.match_info["user_id"])
    if user_id == admin.id and not active:
        return error_page(request, 400, "admin.not_yourself")
    async with unit_of_work(request.app[SESSIONS]) as db:
        user = await db.get(User, user_id)
        if user is None:
            return error_page(request, 404, "errors.not_found")
        await set_active(db, user, active, actor=admin)
    if not active:
        request.app[HUB].close_user(user_id)
    return redirect("/admin/users")


@routes.get("/admin/audit")
@allow(*ADMINS)
async def audit_log(request: web.Request) -> web.Response:
    action = request.query.get("action", "").strip()[:64]
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(AUDIT_PAGE)
    if action:
        query = query.where(AuditLog.action == action)
    before = request.query.get("before", "")
    if before.isdigit():
        query = query.where(AuditLog.id < int(before))
    async with request.app[SESSIONS]() as db:
        entries = list(await db.scalars(query))
    more = len(entries) == AUDIT_PAGE
    return render(request, "admin_audit.html", {"entries": entries, "action": action, "more": more})

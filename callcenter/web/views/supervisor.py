"""The supervisor's page: the live wallboard (pushed over /events) and the agent controls.

``serve`` always runs the wallboard (the omnichannel tiles need no PBX); the telephony control
is there only when telephony runs (an AMI password): without it the page says so, and without a
wallboard at all (an app built without ``serve``) it shows the staff list alone.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select

from callcenter.dashboard.control import ControlError, SpyMode, TelephonyControl
from callcenter.domain.audit import record
from callcenter.models import Role, User
from callcenter.web.access import SUPERVISORS, allow
from callcenter.web.i18n import catalog, translator
from callcenter.web.keys import CONTROL, HUB, PRESENCE, SESSIONS, WALLBOARD
from callcenter.web.render import language, render
from callcenter.web.session import require_user

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

ACTIONS = frozenset({"pause", "resume", "login", "logout"})


@routes.get("/supervisor")
@allow(*SUPERVISORS)
async def supervisor_home(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        agents = list(
            await db.scalars(select(User).where(User.role == Role.AGENT).order_by(User.username))
        )
    presence = request.app.get(PRESENCE)
    online = presence.online() if presence else {c.user_id for c in request.app[HUB].connections()}
    wallboard = request.app.get(WALLBOARD)
    names = {a.sip_endpoint: a.display_name or a.username for a in agents if a.sip_endpoint}
    texts = catalog(language(request))
    context = {
        "agents": agents,
        "online": online,
        "board": wallboard.snapshot() if wallboard is not None else None,
        "telephony": CONTROL in request.app or bool(presence and presence.telephony_elsewhere()),
        "names": names,
        "labels": {k: v for k, v in texts.items() if k.startswith("wallboard.")},
        "reasons": [v for k, v in texts.items() if k.startswith("wallboard.reason_")],
        "spy_from": _spy_phone(require_user(request)),
    }
    return render(request, "supervisor.html", context)


def _spy_phone(user: User) -> str:
    """The phone a supervisor listens in from; empty for admins and supervisors without one."""
    return (user.sip_endpoint or "") if user.role is Role.SUPERVISOR else ""


async def _perform(control: TelephonyControl, action: str, form: dict[str, str]) -> None:
    interface, queue = form.get("interface", ""), form.get("queue", "") or None
    if action == "pause":
        await control.pause(interface, form.get("reason", ""), queue)
    elif action == "resume":
        await control.resume(interface, queue)
    elif queue is None:
        raise ValueError("which queue?")
    elif action == "login":
        await control.log_in(interface, queue, form.get("name", ""))
    else:
        await control.log_out(interface, queue)


@routes.post("/supervisor/agents/{action}")
@allow(*SUPERVISORS)
async def control_agent(request: web.Request) -> web.Response:
    """Pause, resume, log into or out of a queue; JSON answer for the wallboard's script."""
    user = require_user(request)
    t = translator(language(request))
    control = request.app.get(CONTROL)
    if control is None:
        return web.json_response({"error": t("wallboard.no_control")}, status=503)
    action = request.match_info["action"]
    if action not in ACTIONS:
        return web.json_response({"error": t("errors.not_found")}, status=404)
    form = {k: str(v) for k, v in (await request.post()).items() if k != "_csrf"}
    try:
        await _perform(control, action, form)
    except ValueError as exc:
        return web.json_response({"error": t("wallboard.bad_input", detail=str(exc))}, status=400)
    except ControlError as exc:
        return web.json_response({"error": t("wallboard.refused", detail=str(exc))}, status=502)
    async with request.app[SESSIONS]() as db, db.begin():
        record(
            db,
            f"agent.{action}",
            actor=user,
            target_type="agent",
            target_id=form.get("interface", ""),
            details={k: form[k] for k in ("queue", "reason") if form.get(k)},
        )
    log.info("%s: %s %s", user.username, action, form.get("interface"))
    return web.json_response({"ok": True})


@routes.post("/supervisor/spy/{mode}")
@allow(*SUPERVISORS)
async def spy_on_agent(request: web.Request) -> web.Response:
    """Listen, whisper or barge: ring the supervisor's own phone into the agent's call.

    Supervisors only: admins pass the access check (and CSRF) like on every supervisor route,
    but listening in on customers is not theirs."""
    user = require_user(request)
    if user.role is not Role.SUPERVISOR:
        raise web.HTTPForbidden()
    t = translator(language(request))
    control, wallboard = request.app.get(CONTROL), request.app.get(WALLBOARD)
    if control is None or wallboard is None:
        return web.json_response({"error": t("wallboard.no_control")}, status=503)
    try:
        mode = SpyMode(request.match_info["mode"])
    except ValueError:
        return web.json_response({"error": t("errors.not_found")}, status=404)
    interface = str((await request.post()).get("interface", ""))
    if not user.sip_endpoint:
        return web.json_response({"error": t("wallboard.spy_no_phone")}, status=409)
    if not wallboard.on_call(interface):
        return web.json_response({"error": t("wallboard.spy_not_on_call")}, status=409)
    try:
        # The audit entry is written before Asterisk is asked, and kept only if it agreed.
        async with request.app[SESSIONS]() as db, db.begin():
            record(
                db,
                f"agent.{mode.value}",
                actor=user,
                target_type="agent",
                target_id=interface,
                details={"from": user.sip_endpoint},
            )
            await db.flush()
            await control.spy(user.sip_endpoint, interface, mode)
    except ValueError as exc:
        return web.json_response({"error": t("wallboard.bad_input", detail=str(exc))}, status=400)
    except ControlError as exc:
        return web.json_response({"error": t("wallboard.refused", detail=str(exc))}, status=502)
    log.info("%s: %s on %s from %s", user.username, mode.value, interface, user.sip_endpoint)
    return web.json_response({"ok": True})

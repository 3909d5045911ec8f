"""The agent's telephony controls: their own queue status, the after-call wrap-up, click-to-call
and call recordings.

Status changes act only on the signed-in user's own endpoint (``User.sip_endpoint``), never on
an interface named by the browser; the state shown is Asterisk's, read from the live state the
wallboard publishes. Every route answers JSON for ``workspace.js``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.events import TicketSolved, WrapUpSaved
from callcenter.channels.telephony.events import AgentState
from callcenter.config import Settings
from callcenter.crm.links import RecordingLinks
from callcenter.dashboard.control import ControlError, check_queue, check_reason
from callcenter.domain.audit import record
from callcenter.models import (
    Call,
    CallOutcome,
    Customer,
    Identity,
    IdentityKind,
    Interaction,
    Queue,
    Role,
    Ticket,
    TicketStatus,
    User,
    utcnow,
)
from callcenter.web.access import EVERYONE, allow, public
from callcenter.web.i18n import Translate, translator
from callcenter.web.keys import BUS, CLICK_TO_CALL, CONTROL, SESSIONS, SETTINGS, WALLBOARD
from callcenter.web.render import language
from callcenter.web.session import require_user
from callcenter.workspace_models import WrapUp

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

STATUS_ACTIONS = frozenset({"pause", "resume", "login", "logout"})
MAX_SUMMARY = 4000
RECENT_CALLS = 10
TICKET_STATUSES = (TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.SOLVED)


def dispositions(settings: Settings) -> list[str]:
    return [d.strip() for d in settings.wrapup_dispositions.split(",") if d.strip()]


def _error(t: Translate, key: str, status: int, **values: object) -> web.Response:
    return web.json_response({"error": t(key, **values)}, status=status)


def own_status(request: web.Request, user: User) -> dict[str, Any]:
    """The user's agent state as Asterisk reports it (``offline`` when not in any queue)."""
    wallboard = request.app.get(WALLBOARD)
    found: dict[str, Any] = {}
    if wallboard is not None and user.sip_endpoint:
        agents = wallboard.snapshot()["agents"]
        found = next((a for a in agents if a["interface"] == user.sip_endpoint), {})
    return {
        "telephony": CONTROL in request.app,
        "endpoint": user.sip_endpoint or "",
        "state": found.get("state", "offline"),
        "reason": found.get("reason", ""),
        "queues": found.get("queues", []),
        "paused_queues": found.get("paused_queues", []),
        "caller_number": found.get("caller_number", ""),
    }


async def workspace_context(request: web.Request, db: AsyncSession, user: User) -> dict[str, Any]:
    """What the agent page needs for the status bar and the wrap-up forms."""
    status = own_status(request, user)
    known = set(await db.scalars(select(Queue.name)))
    t = translator(language(request))
    return {
        "status": status,
        "status_labels": {s.value: t(f"wallboard.state_{s.value}") for s in AgentState},
        "queues": sorted(known | set(status["queues"])),
        "dispositions": dispositions(request.app[SETTINGS]),
        "ticket_statuses": [s.value for s in TICKET_STATUSES],
        "pending_wrapups": await pending_wrapups(db, user),
    }


async def pending_wrapups(db: AsyncSession, user: User) -> list[dict[str, Any]]:
    """The user's most recent answered calls that have no wrap-up yet, newest first."""
    rows = await db.execute(
        select(Call, Interaction)
        .join(Interaction, Interaction.id == Call.interaction_id)
        .outerjoin(WrapUp, WrapUp.interaction_id == Call.interaction_id)
        .where(
            Call.agent_id == user.id,
            Call.outcome == CallOutcome.ANSWERED,
            WrapUp.id.is_(None),
        )
        .order_by(Call.started_at.desc())
        .limit(RECENT_CALLS)
    )
    return [
        {
            "interaction_id": call.interaction_id,
            "customer_id": interaction.customer_id,
            "ticket_id": interaction.ticket_id,
            "caller_number": call.caller_number,
            "started_at": call.started_at,
            "talk_seconds": call.talk_seconds,
            "recording": bool(call.recording_path),
        }
        for call, interaction in rows
    ]


async def _form(request: web.Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.post()).items() if k != "_csrf"}


@routes.get("/agent/status")
@allow(*EVERYONE)
async def get_status(request: web.Request) -> web.Response:
    return web.json_response(own_status(request, require_user(request)))


@routes.post("/agent/status/{action}")
@allow(*EVERYONE)
async def change_status(request: web.Request) -> web.Response:
    """Log the signed-in agent into or out of a queue, pause with a reason, or resume."""
    user = require_user(request)
    t = translator(language(request))
    action = request.match_info["action"]
    if action not in STATUS_ACTIONS:
        return _error(t, "errors.not_found", 404)
    control = request.app.get(CONTROL)
    if control is None:
        return _error(t, "calls.no_telephony", 503)
    interface = user.sip_endpoint
    if not interface:
        return _error(t, "calls.no_endpoint", 400)
    form = await _form(request)
    try:
        queue = check_queue(form["queue"]) if form.get("queue") else None
        reason = check_reason(form.get("reason", ""))
        if action == "pause":
            await control.pause(interface, reason, queue)
        elif action == "resume":
            await control.resume(interface, queue)
        elif queue is None:
            raise ValueError("which queue?")
        elif action == "login":
            await control.log_in(interface, queue, user.display_name or user.username)
        else:
            await control.log_out(interface, queue)
    except ValueError as exc:
        return _error(t, "wallboard.bad_input", 400, detail=str(exc))
    except ControlError as exc:
        return _error(t, "wallboard.refused", 502, detail=str(exc))
    async with request.app[SESSIONS]() as db, db.begin():
        details = {"queue": queue, "reason": reason}
        record(
            db,
            f"agent.{action}",
            actor=user,
            target_type="agent",
            target_id=interface,
            details={k: v for k, v in details.items() if v},
        )
    log.info("%s: own %s %s", user.username, action, queue or "")
    return web.json_response({"ok": True})


async def _call_for(
    db: AsyncSession, user: User, interaction_id: int
) -> tuple[Call, Interaction] | None:
    """The call if the user took it or supervises; None otherwise (or when there is none)."""
    row = (
        await db.execute(
            select(Call, Interaction)
            .join(Interaction, Interaction.id == Call.interaction_id)
            .where(Call.interaction_id == interaction_id)
        )
    ).first()
    if row is None:
        return None
    call, interaction = row
    if user.role is Role.AGENT and user.id not in (call.agent_id, interaction.agent_id):
        return None
    return call, interaction


def _check_wrapup(form: dict[str, str], settings: Settings) -> tuple[str, str, str]:
    disposition = form.get("disposition", "")
    if disposition not in dispositions(settings):
        raise ValueError(f"unknown disposition {disposition!r}")
    summary = form.get("summary", "").strip()
    if len(summary) > MAX_SUMMARY:
        raise ValueError(f"the summary is longer than {MAX_SUMMARY} characters")
    status = form.get("ticket_status", "")
    if status and status not in {s.value for s in TICKET_STATUSES}:
        raise ValueError(f"unknown ticket status {status!r}")
    return disposition, summary, status


@routes.post(r"/calls/{interaction_id:\d+}/wrapup")
@allow(*EVERYONE)
async def save_wrapup(request: web.Request) -> web.Response:
    """Store the after-call work, set the ticket's status, then tell the automation."""
    user = require_user(request)
    t = translator(language(request))
    interaction_id = int(request.match_info["interaction_id"])
    try:
        disposition, summary, status = _check_wrapup(await _form(request), request.app[SETTINGS])
    except ValueError as exc:
        return _error(t, "wallboard.bad_input", 400, detail=str(exc))
    solved: TicketSolved | None = None
    async with request.app[SESSIONS]() as db, db.begin():
        found = await _call_for(db, user, interaction_id)
        if found is None:
            return _error(t, "errors.not_found", 404)
        call, interaction = found
        wrapup = await db.scalar(select(WrapUp).where(WrapUp.interaction_id == interaction_id))
        if wrapup is None:
            wrapup = WrapUp(interaction_id=interaction_id)
            db.add(wrapup)
        wrapup.agent_id = call.agent_id or interaction.agent_id or user.id
        wrapup.disposition, wrapup.summary, wrapup.ticket_status = disposition, summary, status
        ticket = await db.get(Ticket, interaction.ticket_id) if interaction.ticket_id else None
        if ticket is not None and status and ticket.status != status:
            ticket.status = TicketStatus(status)
            if ticket.status is TicketStatus.SOLVED:
                ticket.solved_at = utcnow()
                solved = TicketSolved(ticket.id, ticket.customer_id, ticket.solved_at)
        record(
            db,
            "call.wrapup",
            actor=user,
            target_type="interaction",
            target_id=interaction_id,
            details={"disposition": disposition, "ticket_status": status},
        )
        event = WrapUpSaved(
            interaction_id, interaction.ticket_id, wrapup.agent_id, disposition, summary
        )
    bus = request.app[BUS]
    bus.publish(event)
    if solved is not None:
        bus.publish(solved)
    return web.json_response({"ok": True, "message": t("calls.saved")})


@routes.get(r"/calls/{interaction_id:\d+}/recording")
@allow(*EVERYONE)
async def recording(request: web.Request) -> web.StreamResponse:
    """The call's recording, to the agent who took it and to supervisors."""
    user = require_user(request)
    async with request.app[SESSIONS]() as db:
        found = await _call_for(db, user, int(request.match_info["interaction_id"]))
    if found is None or not found[0].recording_path:
        raise web.HTTPNotFound()
    path = recording_file(request.app[SETTINGS], found[0].recording_path)
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Disposition": "inline"})


@routes.get(r"/recordings/{interaction_id:\d+}")
@public
async def shared_recording(request: web.Request) -> web.StreamResponse:
    """A call's recording through a signed link that expires (for the CRM and webhook
    receivers, which have no login); a forged, altered or expired link is a 404."""
    interaction_id = int(request.match_info["interaction_id"])
    settings = request.app[SETTINGS]
    query = request.query
    if not settings.session_key or not RecordingLinks("", settings.session_key).valid(
        interaction_id, query.get("expires", ""), query.get("signature", "")
    ):
        raise web.HTTPNotFound()
    async with request.app[SESSIONS]() as db:
        call = await db.get(Call, interaction_id)
    path = recording_file(settings, call.recording_path) if call and call.recording_path else None
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Disposition": "inline"})


def recording_file(settings: Settings, stored: str) -> Path | None:
    """The stored path as a file inside ``data_dir/recordings``, or None if it is elsewhere."""
    root = (settings.data_dir / "recordings").resolve()
    path = (root / stored).resolve()  # an absolute stored path replaces root
    if not path.is_relative_to(root) or not path.is_file():
        log.warning("recording %r is not a file under %s", stored, root)
        return None
    return path


async def _calling_about(db: AsyncSession, raw: str, customer_id: int) -> int | None:
    """The ticket a click-to-call is made from: one of this customer's, else none (a stale
    page, or another customer's ticket, is ignored rather than refusing the call)."""
    if not raw.isdigit():
        return None
    ticket = await db.get(Ticket, int(raw))
    return ticket.id if ticket is not None and ticket.customer_id == customer_id else None


@routes.post(r"/customers/{customer_id:\d+}/call")
@allow(*EVERYONE)
async def call_customer(request: web.Request) -> web.Response:
    """Click-to-call: ring the agent's phone, then the customer's number."""
    user = require_user(request)
    t = translator(language(request))
    dialer = request.app.get(CLICK_TO_CALL)
    if dialer is None:
        return _error(t, "calls.no_click_to_call", 503)
    if not user.sip_endpoint:
        return _error(t, "calls.no_endpoint", 400)
    customer_id = int(request.match_info["customer_id"])
    form = await _form(request)
    number = form.get("number", "")
    async with request.app[SESSIONS]() as db:
        if await db.get(Customer, customer_id) is None:
            return _error(t, "errors.not_found", 404)
        ticket_id = await _calling_about(db, form.get("ticket_id", ""), customer_id)
        phones = list(
            await db.scalars(
                select(Identity.value).where(
                    Identity.customer_id == customer_id, Identity.kind == IdentityKind.PHONE
                )
            )
        )
    if not phones:
        return _error(t, "calls.no_phone", 400)
    if number not in phones:
        number = phones[0]  # only the customer's own numbers are dialled
    try:
        request_id = await dialer.call(user.sip_endpoint, number, user.id, ticket_id)
    except ValueError as exc:
        return _error(t, "wallboard.bad_input", 400, detail=str(exc))
    log.info("%s: click-to-call customer %s (ticket %s)", user.username, customer_id, ticket_id)
    return web.json_response({"ok": True, "request_id": request_id, "message": t("calls.dialing")})

"""Admin: queues. Every queue of the queues table and of Asterisk's live state, with callers
waiting and members; admins edit display name and service level of each, and the Asterisk side
(strategy, ring timeout, wrap-up, max callers, static members) of the queues created here
(``managed``), which are written to queues_managed.conf and reloaded (queueconf.py).
Supervisors see the page without its forms."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telephony.queueconf import (
    STRATEGIES,
    ApplyError,
    LiveQueueSettings,
    Member,
    QueueApplier,
    QueueConfigError,
    QueueDefinition,
    check_name,
    definition_of,
    inbound_number,
    member_name,
    parse_int,
    shipped_sections,
    validate,
)
from callcenter.channels.telephony.routing import QueueNumbers
from callcenter.db import unit_of_work
from callcenter.domain.audit import record
from callcenter.models import Queue, QueueMember, Role, User
from callcenter.web.access import ADMINS, SUPERVISORS, allow
from callcenter.web.keys import SESSIONS, WALLBOARD
from callcenter.web.render import error_page, redirect, render
from callcenter.web.session import require_user

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
PATH = "/admin/queues"
QUEUE_APPLIER = web.AppKey("queue_applier", QueueApplier)
"""Present when serve knows Asterisk's config directory (queues_config_path) and runs AMI."""
LIVE_QUEUES = web.AppKey("live_queue_settings", LiveQueueSettings)
"""Present when serve runs telephony: saved service levels reach the wallboard at once."""
QUEUE_NUMBERS = web.AppKey("queue_numbers", QueueNumbers)
"""Present when serve runs the FastAGI lookup: a saved number routes calls at once."""

NOTICES = frozenset({"saved", "applied", "not_applied", "apply_failed"})
FIELDS = ("strategy", "ring_timeout_seconds", "wrapup_seconds", "max_callers")
BLANK_FORM: dict[str, Any] = {
    "name": "",
    "display_name": "",
    "inbound_number": None,
    "service_level_seconds": 20,
    "abandoned_in_service_level": False,
    "strategy": "rrmemory",
    "ring_timeout_seconds": 15,
    "wrapup_seconds": None,
    "max_callers": 0,
    "members": {},
}


def _live(request: web.Request) -> dict[str, dict[str, Any]]:
    """Per queue name in Asterisk now: callers waiting and member interfaces (empty without
    telephony)."""
    wallboard = request.app.get(WALLBOARD)
    if wallboard is None:
        return {}
    board = wallboard.snapshot()
    live = {q["name"]: {"waiting": q["waiting"], "members": []} for q in board["queues"]}
    for agent in board["agents"]:
        for name in agent["queues"]:
            live.setdefault(name, {"waiting": 0, "members": []})["members"].append(
                agent["name"] or agent["interface"]
            )
    return live


def _notice(request: web.Request) -> str:
    notice = request.query.get("notice", "")
    return notice if notice in NOTICES else ""


async def _phones(db: AsyncSession) -> list[User]:
    """Staff accounts with a phone: who may be a static member."""
    query = select(User).where(User.sip_endpoint.is_not(None), User.active.is_(True))
    return [u for u in await db.scalars(query.order_by(User.username)) if u.sip_endpoint]


def _shipped(request: web.Request) -> set[str]:
    """Sections of the queues.conf Asterisk reads (the repository's when none is configured)."""
    applier = request.app.get(QUEUE_APPLIER)
    return applier.shipped() if applier is not None else shipped_sections()


async def _list_page(
    request: web.Request,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> web.Response:
    async with request.app[SESSIONS]() as db:
        queues = list(await db.scalars(select(Queue).order_by(Queue.name)))
        phones = await _phones(db)
    live = _live(request)
    known = {q.name for q in queues}
    context = {
        "queues": queues,
        "live": live,
        "only_live": sorted(name for name in live if name not in known),
        "telephony": WALLBOARD in request.app,
        "strategies": STRATEGIES,
        "phones": phones,
        "errors": errors or {},
        "form": {**BLANK_FORM, **(form or {})},
        "can_edit": require_user(request).role is Role.ADMIN,
        "notice": _notice(request),
    }
    return render(request, "admin_queues.html", context, status=status)


async def _edit_page(
    request: web.Request,
    queue: Queue,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> web.Response:
    async with request.app[SESSIONS]() as db:
        phones = await _phones(db)
    context = {
        "queue": queue,
        "live": _live(request).get(queue.name),
        "strategies": STRATEGIES,
        "phones": phones,
        "members": {m.interface: m for m in queue.members},
        "errors": errors or {},
        "form": {**BLANK_FORM, **form} if form else None,
        "can_edit": require_user(request).role is Role.ADMIN,
        "notice": _notice(request),
    }
    return render(request, "admin_queue.html", context, status=status)


def _read_form(posted: MultiDictProxy[Any], managed: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The queue's fields from a form, and the fields that could not be read."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "display_name": str(posted.get("display_name", "")).strip(),
        "abandoned_in_service_level": posted.get("abandoned_in_service_level") == "1",
    }
    if len(values["display_name"]) > 200 or any(ord(c) < 32 for c in values["display_name"]):
        errors["display_name"] = "queues.bad_display_name"
    try:
        values["inbound_number"] = inbound_number(str(posted.get("inbound_number", "")))
    except ValueError:
        values["inbound_number"] = str(posted.get("inbound_number"))
        errors["inbound_number"] = "queues.bad_number"
    numbers = {"service_level_seconds": 20}
    if managed:
        numbers.update({"ring_timeout_seconds": 15, "max_callers": 0})
        values["strategy"] = str(posted.get("strategy", ""))
        try:
            values["wrapup_seconds"] = parse_int(posted.get("wrapup_seconds"))
        except ValueError:
            values["wrapup_seconds"] = str(posted.get("wrapup_seconds"))
            errors["wrapup_seconds"] = "queues.not_a_number"
        members = []
        for interface in posted.getall("member", []):
            interface = str(interface)
            try:
                penalty = parse_int(posted.get(f"penalty:{interface}"), blank=0) or 0
            except ValueError:
                errors["members"] = "queues.not_a_number"
                continue
            members.append(Member(interface, penalty))
        values["members"] = members
    for key, default in numbers.items():
        try:
            values[key] = parse_int(posted.get(key), blank=default)
        except ValueError:
            values[key] = str(posted.get(key))
            errors[key] = "queues.not_a_number"
    return values, errors


def _check(name: str, values: dict[str, Any], errors: dict[str, str], managed: bool) -> None:
    """Adds QueueDefinition's own errors (ranges, strategy, members) to ``errors``."""
    if errors:
        return
    try:
        if managed:
            fields = {k: values[k] for k in (*FIELDS, "service_level_seconds")}
            validate(QueueDefinition(name=name, members=tuple(values["members"]), **fields))
        else:
            validate(
                QueueDefinition(name=name, service_level_seconds=values["service_level_seconds"])
            )
    except QueueConfigError as exc:
        errors.update({k: v for k, v in exc.errors.items() if k != "name"})


def _only_known_members(values: dict[str, Any], errors: dict[str, str], known: set[str]) -> None:
    """Members are staff phones (or were members already): not any endpoint a form names."""
    if any(m.interface not in known for m in values.get("members", [])):
        errors.setdefault("members", "queues.bad_member")


def _member_names(phones: list[User]) -> dict[str, str]:
    return {u.sip_endpoint or "": member_name(u.display_name or u.username) for u in phones}


async def _number_taken(
    db: AsyncSession, values: dict[str, Any], errors: dict[str, str], queue_id: int | None = None
) -> None:
    """Each dialled number leads to one queue."""
    number = values.get("inbound_number")
    if errors.get("inbound_number") or not number:
        return
    other = await db.scalar(select(Queue.id).where(Queue.inbound_number == number))
    if other is not None and other != queue_id:
        errors["inbound_number"] = "queues.number_taken"


async def _to_live_state(request: web.Request, queue: Queue, *, deleted: bool = False) -> None:
    """The wallboard's settings and the FastAGI lookup's numbers follow a save at once."""
    live = request.app.get(LIVE_QUEUES)
    if live is not None:
        live.update(queue, deleted=deleted)
    numbers = request.app.get(QUEUE_NUMBERS)
    if numbers is not None:
        await numbers.refresh()


async def _apply(request: web.Request, db: AsyncSession, changed: str) -> str:
    """Write every managed queue and reload ``changed``; the notice for the next page."""
    applier = request.app.get(QUEUE_APPLIER)
    if applier is None:
        return "not_applied"
    try:
        async with applier.lock:
            managed = await db.scalars(select(Queue).where(Queue.managed.is_(True)))
            await applier.apply([definition_of(q) for q in managed], changed)
    except ApplyError as exc:
        log.warning("queue %s saved but not reloaded: %s", changed, exc)
        return "apply_failed"
    return "applied"


def _audit_details(queue: Queue) -> dict[str, Any]:
    details: dict[str, Any] = {
        "display_name": queue.display_name,
        "inbound_number": queue.inbound_number,
        "service_level_seconds": queue.service_level_seconds,
        "abandoned_in_service_level": queue.abandoned_in_service_level,
    }
    if queue.managed:
        details.update({key: getattr(queue, key) for key in FIELDS})
        details["members"] = [f"{m.interface}:{m.penalty}" for m in queue.members]
    return details


def _set_members(queue: Queue, members: list[Member], names: dict[str, str]) -> None:
    """Members as the form lists them; kept rows are updated in place (the unit of work
    inserts before it deletes, and (queue, interface) is unique)."""
    current = {m.interface: m for m in queue.members}
    kept = []
    for member in members:
        row = current.get(member.interface) or QueueMember(interface=member.interface)
        row.penalty = member.penalty
        row.member_name = names.get(member.interface, row.member_name or "")
        kept.append(row)
    queue.members = kept


@routes.get(PATH)
@allow(*SUPERVISORS)
async def queues_page(request: web.Request) -> web.Response:
    return await _list_page(request)


@routes.post(PATH)
@allow(*ADMINS)
async def create_queue(request: web.Request) -> web.Response:
    admin = require_user(request)
    posted = await request.post()
    name = str(posted.get("name", "")).strip()
    values, errors = _read_form(posted, managed=True)
    async with request.app[SESSIONS]() as db:
        existing = set(await db.scalars(select(Queue.name)))
        names = _member_names(await _phones(db))
        await _number_taken(db, values, errors)
    taken = existing | _shipped(request) | set(_live(request))
    _check(name, values, errors, managed=True)
    _only_known_members(values, errors, set(names))
    if problem := check_name(name, taken):
        errors["name"] = problem
    form = {**values, "name": name, "members": {m.interface: m for m in values.get("members", [])}}
    if errors:
        return await _list_page(request, status=400, errors=errors, form=form)
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            queue = Queue(
                name=name, managed=True, **{k: v for k, v in values.items() if k != "members"}
            )
            _set_members(queue, values["members"], names)
            db.add(queue)
            await db.flush()
            record(
                db,
                "queue.create",
                actor=admin,
                target_type="queue",
                target_id=name,
                details=_audit_details(queue),
            )
    except IntegrityError:
        return await _list_page(
            request, status=400, errors={"name": "queues.name_taken"}, form=form
        )
    await _to_live_state(request, queue)
    async with request.app[SESSIONS]() as db:
        notice = await _apply(request, db, name)
    return redirect(f"{PATH}/{queue.id}?notice={notice}")


async def _queue(request: web.Request, db: AsyncSession) -> Queue | None:
    return await db.get(Queue, int(request.match_info["queue_id"]))


@routes.get(PATH + r"/{queue_id:\d+}")
@allow(*SUPERVISORS)
async def queue_page(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        queue = await _queue(request, db)
    if queue is None:
        return error_page(request, 404, "errors.not_found")
    return await _edit_page(request, queue)


@routes.post(PATH + r"/{queue_id:\d+}")
@allow(*ADMINS)
async def save_queue(request: web.Request) -> web.Response:
    admin = require_user(request)
    posted = await request.post()
    errors: dict[str, str] = {}
    async with unit_of_work(request.app[SESSIONS]) as db:
        queue = await _queue(request, db)
        if queue is None:
            return error_page(request, 404, "errors.not_found")
        values, errors = _read_form(posted, queue.managed)
        _check(queue.name, values, errors, queue.managed)
        names = _member_names(await _phones(db))
        known = set(names) | {m.interface for m in queue.members}
        _only_known_members(values, errors, known)
        await _number_taken(db, values, errors, queue.id)
        if not errors:
            for key, value in values.items():
                if key != "members":
                    setattr(queue, key, value)
            if queue.managed:
                _set_members(queue, values["members"], names)
            await db.flush()
            details = _audit_details(queue)
            record(
                db,
                "queue.update",
                actor=admin,
                target_type="queue",
                target_id=queue.name,
                details=details,
            )
    if errors:  # shown after the transaction: SQLite allows one writer, pages read
        form = {**values, "members": {m.interface: m for m in values.get("members", [])}}
        return await _edit_page(request, queue, status=400, errors=errors, form=form)
    await _to_live_state(request, queue)
    notice = "saved"
    if queue.managed:
        async with request.app[SESSIONS]() as db:
            notice = await _apply(request, db, queue.name)
    return redirect(f"{PATH}/{queue.id}?notice={notice}")


@routes.post(PATH + r"/{queue_id:\d+}/delete")
@allow(*ADMINS)
async def delete_queue(request: web.Request) -> web.Response:
    admin = require_user(request)
    refusal: tuple[int, str] | None = None
    async with unit_of_work(request.app[SESSIONS]) as db:
        queue = await _queue(request, db)
        if queue is None:
            return error_page(request, 404, "errors.not_found")
        if not queue.managed:
            refusal = (400, "queues.not_managed")
        elif (_live(request).get(queue.name) or {}).get("waiting", 0):
            refusal = (409, "queues.callers_waiting")
        else:
            record(
                db,
                "queue.delete",
                actor=admin,
                target_type="queue",
                target_id=queue.name,
                details=_audit_details(queue),
            )
            await db.delete(queue)
    if refusal is not None:
        status, message = refusal
        return await _edit_page(request, queue, status=status, errors={"delete": message})
    await _to_live_state(request, queue, deleted=True)
    async with request.app[SESSIONS]() as db:
        notice = await _apply(request, db, queue.name)
    return redirect(f"{PATH}?notice={notice}")

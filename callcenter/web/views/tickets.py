"""The agent's workspace on the customer page: one thread per ticket, replies by Telegram and
email through the outbox, internal notes, ticket actions and merging customers.

Events (an agent's reply, a solved ticket) are published on the bus only after the commit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.email.threading import is_header_safe_id
from callcenter.db import unit_of_work
from callcenter.domain.customers import get_customer, merge_customers
from callcenter.domain.errors import AlreadyMerged, DomainError, NotFound, SelfMerge
from callcenter.domain.tickets import (
    InvalidIntent,
    UnknownAssignee,
    assign,
    record_reply,
    set_intents,
    set_status,
)
from callcenter.models import (
    Call,
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    MergeSuggestion,
    Outbox,
    SuggestionStatus,
    Ticket,
    TicketStatus,
    User,
    utcnow,
)
from callcenter.outbox import enqueue
from callcenter.web.access import EVERYONE, allow
from callcenter.web.keys import BUS, SESSIONS
from callcenter.web.render import error_page, redirect
from callcenter.web.session import require_user

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

TIMELINE_LIMIT = 500
MAX_TEXT = 20_000
REPLY_CHANNELS = {"telegram": Channel.TELEGRAM, "email": Channel.EMAIL}


@dataclass
class Entry:
    """One message of a thread, its text cut into (piece, is an order number) for highlighting."""

    item: Interaction
    call: Call | None
    pieces: list[tuple[str, bool]]
    outbox: Outbox | None


@dataclass
class Thread:
    ticket: Ticket | None
    assignee: User | None
    entries: list[Entry] = field(default_factory=list)


def highlight(text: str, numbers: list[str]) -> list[tuple[str, bool]]:
    """``text`` as pieces, the order numbers marked; the template escapes every piece."""
    wanted = sorted({n for n in numbers if n}, key=len, reverse=True)
    if not text or not wanted:
        return [(text, False)]
    pattern = re.compile("(" + "|".join(re.escape(n) for n in wanted) + ")")
    return [(piece, i % 2 == 1) for i, piece in enumerate(pattern.split(text)) if piece]


async def workspace(db: AsyncSession, customer: Customer, identities: list[Identity]) -> dict:
    """Everything the customer page shows besides the identities: threads, forms' choices."""
    tickets = list(
        await db.scalars(
            select(Ticket)
            .where(Ticket.customer_id == customer.id)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        )
    )
    rows = (
        await db.execute(
            select(Interaction, Call)
            .outerjoin(Call, Call.interaction_id == Interaction.id)
            .where(Interaction.customer_id == customer.id)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            .limit(TIMELINE_LIMIT)
        )
    ).all()
    outbox: dict[int, Outbox] = {}
    if tickets:
        for row in await db.scalars(
            select(Outbox).where(Outbox.ticket_id.in_([t.id for t in tickets]))
        ):
            interaction_id = (row.payload or {}).get("interaction_id")
            if isinstance(interaction_id, int):
                outbox[interaction_id] = row
    users = list(await db.scalars(select(User).where(User.active.is_(True)).order_by(User.id)))
    by_id = {u.id: u for u in users}
    gone = {t.assignee_id for t in tickets if t.assignee_id} - by_id.keys()
    if gone:  # deactivated since: still shown as the assignee, no longer offered
        by_id |= {u.id: u for u in await db.scalars(select(User).where(User.id.in_(gone)))}
    threads = {t.id: Thread(t, by_id.get(t.assignee_id or 0)) for t in tickets}
    loose = Thread(None, None)
    for item, call in reversed(rows):
        numbers = list(item.order_numbers or [])
        if item.ticket_id in threads:
            numbers += threads[item.ticket_id].ticket.order_numbers or []
        entry = Entry(item, call, highlight(item.text or "", numbers), outbox.get(item.id))
        threads.get(item.ticket_id, loose).entries.append(entry)
    return {
        "threads": list(threads.values()) + ([loose] if loose.entries else []),
        "reply_channels": _reply_channels(identities),
        "agents": users,
        "statuses": list(TicketStatus),
        "merge_suggestions": await _merge_suggestions(db, customer.id),
    }


async def _merge_suggestions(db: AsyncSession, customer_id: int) -> list[int]:
    """Live ids of the customers suggested as the same person, from the open suggestions that
    name this customer or one merged into it (``open_suggestions`` reads them all)."""
    ids = {customer_id}
    fresh = {customer_id}
    while fresh:  # follow merge chains backwards
        fresh = (
            set(await db.scalars(select(Customer.id).where(Customer.merged_into_id.in_(fresh))))
            - ids
        )
        ids |= fresh
    found = await db.scalars(
        select(MergeSuggestion)
        .where(
            MergeSuggestion.status == SuggestionStatus.OPEN,
            MergeSuggestion.customer_id.in_(ids) | MergeSuggestion.other_customer_id.in_(ids),
        )
        .order_by(MergeSuggestion.id)
    )
    others: dict[int, None] = {}
    for suggestion in list(found):
        for side in (suggestion.customer_id, suggestion.other_customer_id):
            try:
                live = (await get_customer(db, side)).id
            except NotFound:
                continue
            if live != customer_id:
                others[live] = None
    return list(others)


def _reply_channels(identities: list[Identity]) -> list[str]:
    channels = []
    if any(i.kind is IdentityKind.TELEGRAM and not i.failing for i in identities):
        channels.append("telegram")
    if any(i.kind is IdentityKind.EMAIL for i in identities):
        channels.append("email")
    return channels


def _ticket_id(request: web.Request) -> int:
    return int(request.match_info["ticket_id"])


def _back(ticket: Ticket) -> web.Response:
    return redirect(f"/customers/{ticket.customer_id}#ticket-{ticket.id}")


def _text(form: Any) -> str:
    return str(form.get("text") or "").strip()


async def _recipient(db: AsyncSession, customer_id: int, kind: IdentityKind) -> Identity | None:
    """The customer's address in ``kind``: a working one first, the newest among equals."""
    identities = await db.scalars(
        select(Identity)
        .where(Identity.customer_id == customer_id, Identity.kind == kind)
        .order_by(Identity.failing, Identity.id.desc())
    )
    return identities.first()


async def _last_mail(db: AsyncSession, ticket: Ticket) -> str | None:
    """The Message-ID of the customer's last mail: on this ticket, else on any of theirs."""
    scopes = (Interaction.ticket_id == ticket.id, Interaction.customer_id == ticket.customer_id)
    for scope in scopes:
        found = await db.scalars(
            select(Interaction.external_id)
            .where(
                scope,
                Interaction.channel == Channel.EMAIL,
                Interaction.direction == Direction.INBOUND,
                Interaction.external_id.is_not(None),
            )
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        )
        for message_id in found:
            if is_header_safe_id(message_id):
                return message_id
    return None


@routes.post(r"/tickets/{ticket_id:\d+}/reply")
@allow(*EVERYONE)
async def reply(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    text = _text(form)
    channel = REPLY_CHANNELS.get(str(form.get("channel") or ""))
    if not text or len(text) > MAX_TEXT:
        return error_page(request, 400, "workspace.text_required", limit=MAX_TEXT)
    if channel is None:
        return error_page(request, 400, "workspace.no_channel")
    now = utcnow()
    async with unit_of_work(request.app[SESSIONS]) as db:
        ticket = await db.get(Ticket, _ticket_id(request))
        if ticket is None:
            return error_page(request, 404, "workspace.no_ticket")
        kind = IdentityKind.TELEGRAM if channel is Channel.TELEGRAM else IdentityKind.EMAIL
        identity = await _recipient(db, ticket.customer_id, kind)
        if identity is None or (channel is Channel.TELEGRAM and identity.failing):
            return error_page(request, 400, "workspace.no_address")
        interaction, event = await record_reply(
            db, ticket.id, channel=channel, text=text, at=now, agent_id=user.id
        )
        payload: dict[str, Any] = {"text": text, "interaction_id": interaction.id}
        if channel is Channel.EMAIL:
            customer = await db.get(Customer, ticket.customer_id)
            payload |= {
                "to": identity.value,
                "to_name": customer.display_name if customer else "",
                "ticket_id": ticket.id,
                "in_reply_to": await _last_mail(db, ticket),
            }
        enqueue(
            db,
            channel=channel.value,
            recipient=identity.value,
            payload=payload,
            ticket_id=ticket.id,
        )
    request.app[BUS].publish(event)
    log.info("agent %s replied on ticket %s by %s", user.username, ticket.id, channel.value)
    return _back(ticket)


@routes.post(r"/tickets/{ticket_id:\d+}/note")
@allow(*EVERYONE)
async def note(request: web.Request) -> web.Response:
    user = require_user(request)
    text = _text(await request.post())
    if not text or len(text) > MAX_TEXT:
        return error_page(request, 400, "workspace.text_required", limit=MAX_TEXT)
    async with unit_of_work(request.app[SESSIONS]) as db:
        ticket = await db.get(Ticket, _ticket_id(request))
        if ticket is None:
            return error_page(request, 404, "workspace.no_ticket")
        await record_reply(
            db, ticket.id, channel=Channel.NOTE, text=text, at=utcnow(), agent_id=user.id
        )
    return _back(ticket)


@routes.post(r"/tickets/{ticket_id:\d+}/status")
@allow(*EVERYONE)
async def status(request: web.Request) -> web.Response:
    user = require_user(request)
    try:
        wanted = TicketStatus(str((await request.post()).get("status") or ""))
    except ValueError:
        return error_page(request, 400, "workspace.bad_status")
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            event = await set_status(db, _ticket_id(request), wanted, at=utcnow(), actor=user)
            ticket = await db.get(Ticket, _ticket_id(request))
    except NotFound:
        return error_page(request, 404, "workspace.no_ticket")
    if event is not None:
        request.app[BUS].publish(event)
    return _back(ticket)


@routes.post(r"/tickets/{ticket_id:\d+}/assign")
@allow(*EVERYONE)
async def assign_ticket(request: web.Request) -> web.Response:
    user = require_user(request)
    raw = str((await request.post()).get("assignee_id") or "")
    if raw and not raw.isdigit():
        return error_page(request, 400, "workspace.unknown_assignee")
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            ticket = await assign(
                db, _ticket_id(request), int(raw) if raw else None, at=utcnow(), actor=user
            )
    except NotFound:
        return error_page(request, 404, "workspace.no_ticket")
    except UnknownAssignee:
        return error_page(request, 400, "workspace.unknown_assignee")
    return _back(ticket)


@routes.post(r"/tickets/{ticket_id:\d+}/intents")
@allow(*EVERYONE)
async def intents(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    added = str(form.get("add") or "").strip()
    removed = str(form.get("remove") or "").strip()
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            ticket = await db.get(Ticket, _ticket_id(request))
            if ticket is None:
                raise NotFound("no ticket")
            names = [n for n in ticket.intents if n != removed] + ([added] if added else [])
            ticket = await set_intents(db, ticket.id, names, at=utcnow(), actor=user)
    except NotFound:
        return error_page(request, 404, "workspace.no_ticket")
    except InvalidIntent:
        return error_page(request, 400, "workspace.bad_intent")
    return _back(ticket)


@routes.post(r"/customers/{customer_id:\d+}/merge")
@allow(*EVERYONE)
async def merge(request: web.Request) -> web.Response:
    """Merge another customer (``source_id``) into this one."""
    user = require_user(request)
    target_id = int(request.match_info["customer_id"])
    raw = str((await request.post()).get("source_id") or "").strip().lstrip("#")
    if not raw.isdigit():
        return error_page(request, 400, "workspace.merge_bad_id")
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            await merge_customers(db, int(raw), target_id, actor=user)
    except SelfMerge:
        return error_page(request, 400, "workspace.merge_self")
    except NotFound:
        return error_page(request, 404, "workspace.merge_missing", id=raw)
    except AlreadyMerged:
        return error_page(request, 409, "workspace.merge_already")
    except DomainError as exc:  # anything else the domain refuses, said as it is
        log.warning("merge %s into %s refused: %s", raw, target_id, exc)
        return error_page(request, 400, "workspace.merge_refused")
    log.info("%s merged customer %s into %s", user.username, raw, target_id)
    return redirect(f"/customers/{target_id}")

"""Building a customer card from the database: the content of a screen-pop.

The card is plain data (JSON-ready); the browser only ever renders it as text.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.crm.base import CrmProfile
from callcenter.crm.lookup import CrmLookup
from callcenter.domain.customers import find_customer
from callcenter.domain.errors import InvalidPhone
from callcenter.domain.identity import normalize_phone
from callcenter.domain.inbox import OPEN_STATUSES
from callcenter.models import (
    Channel,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Ticket,
)
from callcenter.screenpop.opening import opening_line

TIMELINE_LENGTH = 8
TICKETS_SHOWN = 5
EXCERPT_LENGTH = 140
REPEAT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class TimelineItem:
    interaction_id: int
    channel: str
    direction: str
    at: str
    excerpt: str
    order_numbers: list[str]
    intents: list[str]


@dataclass(frozen=True)
class TicketSummary:
    id: int
    status: str
    subject: str
    channel: str
    intents: list[str]
    order_numbers: list[str]


@dataclass(frozen=True)
class Card:
    caller_number: str
    known: bool
    customer_id: int | None = None
    name: str = ""
    language: str = "ru"
    tags: list[str] = field(default_factory=list)
    identities: list[dict[str, str]] = field(default_factory=list)
    tickets: list[TicketSummary] = field(default_factory=list)
    timeline: list[TimelineItem] = field(default_factory=list)
    unanswered: TimelineItem | None = None
    """The customer's last message that no agent has answered yet."""
    promise: TimelineItem | None = None
    """The last thing an agent wrote to the customer."""
    last_contact_at: str | None = None
    repeat_order: str | None = None
    """An order the customer already contacted us about within the last 7 days."""
    opening_line: str = ""
    crm: dict[str, str] | None = None
    """The CRM's company, manager, deal stage and lifetime value, when a CRM answered in time."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def ticket_ids(self) -> list[int]:
        return [t.id for t in self.tickets]

    @property
    def interaction_ids(self) -> list[int]:
        return [i.interaction_id for i in self.timeline]


def _excerpt(text: str) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= EXCERPT_LENGTH else flat[: EXCERPT_LENGTH - 1] + "…"


def _item(row: Interaction) -> TimelineItem:
    return TimelineItem(
        interaction_id=row.id,
        channel=row.channel.value,
        direction=row.direction.value,
        at=row.occurred_at.isoformat(),
        excerpt=_excerpt(row.text),
        order_numbers=list(row.order_numbers or []),
        intents=list(row.intents or []),
    )


def _identity(row: Identity) -> dict[str, str]:
    shown = row.display if row.kind is IdentityKind.TELEGRAM and row.display else row.value
    return {"kind": row.kind.value, "value": shown}


def _pending(rows: list[Interaction]) -> tuple[Interaction | None, Interaction | None]:
    """(the customer's message no agent answered yet, the agent's last message), newest first."""
    written = [
        r for r in rows if r.channel is not Channel.CALL and r.direction is not Direction.INTERNAL
    ]
    promise = next((r for r in written if r.direction is Direction.OUTBOUND), None)
    newest = written[0] if written else None
    unanswered = newest if newest is not None and newest.direction is Direction.INBOUND else None
    return unanswered, promise


def _crm_fields(profile: CrmProfile | None) -> dict[str, str] | None:
    if profile is None:
        return None
    return {
        "company": profile.company,
        "manager": profile.manager,
        "deal_stage": profile.deal_stage,
        "lifetime_value": profile.lifetime_value,
    }


async def _no_profile() -> CrmProfile | None:
    return None


async def build_card(
    session: AsyncSession,
    caller_number: str,
    now: datetime,
    *,
    region: str = "RU",
    crm: CrmLookup | None = None,
) -> Card:
    """The card for a caller: their history if we know the number, else an 'unknown' card.

    With ``crm``, the CRM is asked at the same time as the database, for at most its timeout.
    """
    try:
        phone = normalize_phone(caller_number, region)
    except InvalidPhone:  # withheld or malformed caller ids are simply unknown callers
        phone = ""
    crm_task = asyncio.ensure_future(
        crm.profile(phone=phone) if crm is not None and phone else _no_profile()
    )
    try:
        customer = (
            await find_customer(session, IdentityKind.PHONE, caller_number, region)
            if phone
            else None
        )
    except BaseException:
        crm_task.cancel()
        raise
    if customer is None:
        return Card(caller_number=caller_number, known=False, crm=_crm_fields(await crm_task))

    identities = list(
        await session.scalars(
            select(Identity).where(Identity.customer_id == customer.id).order_by(Identity.id)
        )
    )
    tickets = list(
        await session.scalars(
            select(Ticket)
            .where(Ticket.customer_id == customer.id, Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.updated_at.desc())
            .limit(TICKETS_SHOWN)
        )
    )
    recent = list(
        await session.scalars(
            select(Interaction)
            .where(Interaction.customer_id == customer.id)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            .limit(TIMELINE_LENGTH)
        )
    )
    unanswered, promise = _pending(recent)
    last = recent[0] if recent else None
    repeat_order = next(
        (
            r.order_numbers[0]
            for r in recent
            if r.order_numbers and now - r.occurred_at <= REPEAT_WINDOW
        ),
        None,
    )
    timeline = [_item(r) for r in recent]
    return Card(
        caller_number=caller_number,
        known=True,
        customer_id=customer.id,
        name=customer.display_name,
        language=customer.language,
        tags=list(customer.tags or []),
        identities=[_identity(i) for i in identities],
        tickets=[
            TicketSummary(
                id=t.id,
                status=t.status.value,
                subject=t.subject,
                channel=t.channel.value,
                intents=list(t.intents or []),
                order_numbers=list(t.order_numbers or []),
            )
            for t in tickets
        ],
        timeline=timeline,
        unanswered=_item(unanswered) if unanswered else None,
        promise=_item(promise) if promise else None,
        last_contact_at=last.occurred_at.isoformat() if last else None,
        repeat_order=repeat_order,
        opening_line=opening_line(customer.language, timeline, promised=unanswered is None),
        crm=_crm_fields(await crm_task),
    )

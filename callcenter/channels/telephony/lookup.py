"""Who is calling: the customer behind a caller number, as channel variables for the dialplan.

One SQL round trip per call (the identity, the customer, the open-ticket priority and the
agent of the last answered call, as scalar subqueries), so the FastAGI lookup stays within a
few milliseconds on a million customers. Everything here is plain SQLAlchemy: no Asterisk
protocol, so the same lookup can serve a screen-pop or a test.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, literal_column, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from callcenter.domain.errors import InvalidPhone
from callcenter.domain.identity import normalize_phone
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Customer,
    Identity,
    IdentityKind,
    Interaction,
    Ticket,
    TicketStatus,
    User,
)

UNKNOWN = "unknown"
"""CC_CUSTOMER_ID of a caller who is no customer, or whose number is withheld or unparseable."""
NAME_LIMIT = 40
OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
PRIO_UNKNOWN = 0
PRIO_KNOWN = 1
PRIO_OPEN_TICKET = 5
PRIO_MAX = 9
_REMOVED = frozenset("\"'`\\<>;|")
_LANGUAGES = frozenset({"ru", "en", "uk", "be", "kk", "de", "fr", "es", "it"})


@dataclass(frozen=True)
class CallerInfo:
    """What the dialplan learns about a caller."""

    customer_id: int | None = None
    display_name: str = ""
    language: str = ""
    queue_priority: int = PRIO_UNKNOWN
    preferred_agent: str = ""
    """The SIP endpoint (``PJSIP/1001``) of the agent who answered this customer's last call."""

    def variables(self) -> dict[str, str]:
        """Channel variables to set; empty values are set too, so stale ones are cleared."""
        values = {
            "CC_CUSTOMER_ID": UNKNOWN if self.customer_id is None else str(self.customer_id),
            "CC_LANGUAGE": self.language,
            "CC_QUEUE_PRIO": str(self.queue_priority),
            "CC_PREFERRED_AGENT": self.preferred_agent,
        }
        if self.display_name:
            values["CALLERID(name)"] = self.display_name
        return values


def sanitize_name(raw: str, limit: int = NAME_LIMIT) -> str:
    """A display name safe for CALLERID(name), SIP headers and a web page.

    Drops control and other non-printable characters, quotes, backslashes and angle
    brackets (``"><img src=x onerror=alert(1)>`` becomes ``img src=x onerror=alert(1)``,
    inert text), folds whitespace runs (newlines included) into one space and caps the length.
    Cyrillic and other letters stay as they are.
    """
    kept = []
    for ch in unicodedata.normalize("NFC", raw or ""):
        if ch.isspace():
            kept.append(" ")
        elif ch.isprintable() and ch not in _REMOVED:
            kept.append(ch)
    return " ".join("".join(kept).split())[:limit].rstrip()


def _language(value: str) -> str:
    value = (value or "").strip().lower()
    return value if value in _LANGUAGES else ""


def _priority(open_ticket_priority: int | None) -> int:
    if open_ticket_priority is None:
        return PRIO_KNOWN
    return min(PRIO_MAX, PRIO_OPEN_TICKET + max(0, open_ticket_priority))


def _lookup_query(number: ColumnElement[Any]) -> Select[Any]:
    customer = Customer.__table__.c
    open_priority = (
        select(func.max(Ticket.priority))
        .where(Ticket.customer_id == customer.id, Ticket.status.in_(OPEN_STATUSES))
        .scalar_subquery()
    )
    # The agent of the most recent answered call who still works here with a phone.
    preferred = (
        select(User.sip_endpoint)
        .select_from(Interaction)
        .join(Call, Call.interaction_id == Interaction.id)
        .join(User, User.id == Call.agent_id)
        .where(
            Interaction.customer_id == customer.id,
            Interaction.channel == Channel.CALL,
            Call.outcome == CallOutcome.ANSWERED,
            User.active.is_(True),
            User.sip_endpoint.is_not(None),
        )
        .order_by(Interaction.occurred_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            customer.id,
            customer.display_name,
            customer.language,
            open_priority,
            preferred,
        )
        .select_from(Identity)
        .join(Customer, Customer.id == Identity.customer_id)
        .where(Identity.kind == IdentityKind.PHONE, Identity.value == number)
    )


_LOOKUP = _lookup_query(bindparam("number"))
"""Built once: constructing the statement costs more Python time than running it."""

LOOKUP_SQL_POSTGRESQL = str(
    _lookup_query(literal_column("$1")).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
)
"""The same statement as plain PostgreSQL text with the number as ``$1``, for a driver's
own prepared statement (see `fastagi.CallerLookups`)."""


async def lookup_caller(
    session: AsyncSession | AsyncConnection,
    raw_number: str,
    caller_name: str = "",
    region: str = "RU",
) -> CallerInfo:
    """The caller's customer profile as dialplan values; unknown callers keep a clean name.

    Merging moves a profile's identities to the surviving profile, so an identity always
    leads to a live customer.
    """
    fallback = CallerInfo(display_name=sanitize_name(caller_name))
    number = caller_number(raw_number, region)
    if number is None:
        return fallback
    row = (await session.execute(_LOOKUP, {"number": number})).first()
    return fallback if row is None else caller_info(row, fallback)


def caller_number(raw: str, region: str = "RU") -> str | None:
    """The caller number as stored in identities (E.164), or None when it is no number."""
    try:
        return normalize_phone(raw, region)
    except InvalidPhone:
        return None


def caller_info(row: Sequence[Any], fallback: CallerInfo) -> CallerInfo:
    """A row of the lookup statement as dialplan values."""
    customer_id, name, language, open_priority, preferred = row
    return CallerInfo(
        customer_id=customer_id,
        display_name=sanitize_name(name) or fallback.display_name,
        language=_language(language),
        queue_priority=_priority(open_priority),
        preferred_agent=preferred or "",
    )

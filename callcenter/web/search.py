"""Finding customers from one search box: name, phone in any written form, email, Telegram
username or id, or order number. Exact identity and order matches come first.

Everything reaches the database as bound parameters; LIKE wildcards typed by the user are
escaped, so ``%`` or ``_`` match themselves.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain.errors import DomainError
from callcenter.domain.identity import normalize_email, normalize_phone
from callcenter.models import Customer, Identity, IdentityKind, OrderRef

MAX_QUERY = 200
_ORDER = re.compile(r"(?:№|#|n|no\.?)?\s*(\d{4,10})", re.IGNORECASE)
_TELEGRAM_NAME = re.compile(r"@?([A-Za-z][A-Za-z0-9_]{2,31})")


@dataclass(frozen=True)
class Hit:
    customer: Customer
    identities: list[Identity]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(text: str) -> str:
    return f"%{_escape(text)}%"


def _case_variants(text: str) -> set[str]:
    """SQLite folds case only for ASCII, so Cyrillic names are also tried as usually written."""
    return {text, text.lower(), text.upper(), text.title(), text.capitalize()}


def _exact_queries(query: str, region: str) -> list[Select[tuple[int]]]:
    found: list[Select[tuple[int]]] = []

    def identity(kind: IdentityKind, value: str) -> None:
        found.append(
            select(Identity.customer_id).where(Identity.kind == kind, Identity.value == value)
        )

    if "@" in query.strip("@"):
        with suppress(DomainError):
            identity(IdentityKind.EMAIL, normalize_email(query))
    with suppress(DomainError):
        identity(IdentityKind.PHONE, normalize_phone(query, region))
    if query.isdigit():
        identity(IdentityKind.TELEGRAM, str(int(query)))
    if order := _ORDER.fullmatch(query):
        found.append(select(OrderRef.customer_id).where(OrderRef.order_number == order[1]))
    if name := _TELEGRAM_NAME.fullmatch(query):
        found.append(
            select(Identity.customer_id).where(
                Identity.kind == IdentityKind.TELEGRAM,
                Identity.display.ilike(f"@{_escape(name[1])}", escape="\\"),
            )
        )
    return found


def _fuzzy_query(query: str) -> Select[tuple[int]]:
    names = [Customer.display_name.ilike(_like(v), escape="\\") for v in _case_variants(query)]
    by_name = select(Customer.id).where(or_(*names))
    by_identity = select(Identity.customer_id).where(
        or_(
            Identity.value.ilike(_like(query.lower()), escape="\\"),
            Identity.display.ilike(_like(query), escape="\\"),
        )
    )
    return by_name.union(by_identity)


async def search_customers(
    session: AsyncSession, query: str, region: str = "RU", limit: int = 50
) -> list[Hit]:
    """Live (not merged-away) customers matching ``query``, best matches first."""
    query = " ".join(query.split())[:MAX_QUERY]
    if not query:
        return []
    ids: dict[int, None] = {}
    for statement in _exact_queries(query, region):
        for customer_id in await session.scalars(statement.limit(limit)):
            ids.setdefault(customer_id)
    if len(query) >= 2:
        for customer_id in await session.scalars(_fuzzy_query(query).limit(limit * 2)):
            ids.setdefault(customer_id)
    if not ids:
        return []
    customers = {
        c.id: c
        for c in await session.scalars(
            select(Customer).where(Customer.id.in_(list(ids)), Customer.merged_into_id.is_(None))
        )
    }
    wanted = [cid for cid in ids if cid in customers][:limit]
    identities: dict[int, list[Identity]] = {cid: [] for cid in wanted}
    for ident in await session.scalars(
        select(Identity).where(Identity.customer_id.in_(wanted)).order_by(Identity.id)
    ):
        identities[ident.customer_id].append(ident)
    return [Hit(customers[cid], identities[cid]) for cid in wanted]

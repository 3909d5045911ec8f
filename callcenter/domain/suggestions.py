"""Merge suggestions: profiles that are probably one person, for an agent to confirm.

Evidence: a phone number or email address mentioned in one customer's messages that is an
identity of another customer, or the same order number in both customers' tickets. Suggestions
are never applied automatically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain.customers import get_customer
from callcenter.domain.errors import DomainError
from callcenter.domain.identity import normalize_email
from callcenter.models import (
    Identity,
    IdentityKind,
    Interaction,
    MergeSuggestion,
    OrderRef,
    SuggestionStatus,
)

_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


def mentioned_identities(text: str, region: str = "RU") -> set[tuple[IdentityKind, str]]:
    """Phone numbers and email addresses written in a message, normalised."""
    found: set[tuple[IdentityKind, str]] = set()
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        found.add(
            (
                IdentityKind.PHONE,
                phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164),
            )
        )
    for raw in _EMAIL_IN_TEXT.findall(text):
        try:
            found.add((IdentityKind.EMAIL, normalize_email(raw)))
        except DomainError:
            continue
    return found


async def suggest(
    session: AsyncSession, customer_id: int, other_id: int, reason: str, evidence: str
) -> MergeSuggestion | None:
    """Record a suggestion once; None when it exists or would pair a profile with itself."""
    if customer_id == other_id:
        return None
    low, high = sorted((customer_id, other_id))
    existing = await session.scalar(
        select(MergeSuggestion).where(
            MergeSuggestion.customer_id == low,
            MergeSuggestion.other_customer_id == high,
            MergeSuggestion.reason == reason,
        )
    )
    if existing is not None:
        return None
    suggestion = MergeSuggestion(
        customer_id=low, other_customer_id=high, reason=reason, evidence=evidence[:320]
    )
    try:
        async with session.begin_nested():
            session.add(suggestion)
    except IntegrityError:
        return None
    return suggestion


async def _owners(
    session: AsyncSession, wanted: Iterable[tuple[IdentityKind, str]]
) -> dict[tuple[IdentityKind, str], int]:
    owners: dict[tuple[IdentityKind, str], int] = {}
    for kind, value in wanted:
        owner = await session.scalar(
            select(Identity.customer_id).where(Identity.kind == kind, Identity.value == value)
        )
        if owner is not None:
            owners[(kind, value)] = owner
    return owners


async def refresh_suggestions(
    session: AsyncSession, customer_id: int, region: str = "RU"
) -> list[MergeSuggestion]:
    """Scan one customer's messages and order numbers and record new suggestions."""
    created: list[MergeSuggestion] = []
    texts = await session.scalars(
        select(Interaction.text).where(Interaction.customer_id == customer_id)
    )
    mentioned: set[tuple[IdentityKind, str]] = set()
    for text in texts:
        mentioned |= mentioned_identities(text or "", region)
    for (kind, value), owner in (await _owners(session, mentioned)).items():
        made = await suggest(session, customer_id, owner, f"mentioned-{kind.value}", value)
        if made:
            created.append(made)

    own_orders = select(OrderRef.order_number).where(OrderRef.customer_id == customer_id)
    shared = await session.execute(
        select(OrderRef.customer_id, OrderRef.order_number)
        .where(OrderRef.order_number.in_(own_orders), OrderRef.customer_id != customer_id)
        .distinct()
    )
    for other_id, order_number in shared:
        made = await suggest(session, customer_id, other_id, "same-order", order_number)
        if made:
            created.append(made)
    return created


async def open_suggestions(
    session: AsyncSession, customer_id: int | None = None
) -> list[tuple[MergeSuggestion, int, int]]:
    """Open suggestions as (suggestion, live customer id, live other id), skipping merged pairs."""
    query = select(MergeSuggestion).where(MergeSuggestion.status == SuggestionStatus.OPEN)
    result: list[tuple[MergeSuggestion, int, int]] = []
    for suggestion in await session.scalars(query.order_by(MergeSuggestion.id)):
        left = (await get_customer(session, suggestion.customer_id)).id
        right = (await get_customer(session, suggestion.other_customer_id)).id
        if left == right:
            continue
        if customer_id is None or customer_id in (left, right):
            result.append((suggestion, left, right))
    return result

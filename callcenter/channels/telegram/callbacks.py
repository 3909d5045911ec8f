""" "Call me" requests: a callback task for agents, due now or when the business opens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telegram.hours import BusinessHours
from callcenter.channels.telegram.models import (
    OPEN_CALLBACK_STATUSES,
    CallbackRequest,
)
from callcenter.domain.inbox import OPEN_STATUSES
from callcenter.models import Customer, Identity, IdentityKind, Ticket


@dataclass(frozen=True)
class CallbackRequested:
    """Published after commit: a customer asked to be called back."""

    callback_id: int
    customer_id: int
    ticket_id: int | None
    phone: str
    due_at: datetime | None


async def customer_phone(session: AsyncSession, customer_id: int) -> str:
    """The customer's phone, a verified one first; empty when none is known."""
    phone = await session.scalar(
        select(Identity.value)
        .where(Identity.customer_id == customer_id, Identity.kind == IdentityKind.PHONE)
        .order_by(Identity.verified.desc(), Identity.id.desc())
        .limit(1)
    )
    return phone or ""


async def open_request(session: AsyncSession, customer_id: int) -> CallbackRequest | None:
    return await session.scalar(
        select(CallbackRequest)
        .where(
            CallbackRequest.customer_id == customer_id,
            CallbackRequest.status.in_(OPEN_CALLBACK_STATUSES),
        )
        .order_by(CallbackRequest.id.desc())
        .limit(1)
    )


async def request_callback(
    session: AsyncSession, customer: Customer, hours: BusinessHours, at: datetime
) -> tuple[CallbackRequest, bool]:
    """The customer's open request, or a new one on their newest open ticket;
    returns (request, created)."""
    existing = await open_request(session, customer.id)
    if existing is not None:
        return existing, False
    ticket_id = await session.scalar(
        select(Ticket.id)
        .where(Ticket.customer_id == customer.id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.updated_at.desc())
        .limit(1)
    )
    request = CallbackRequest(
        customer_id=customer.id,
        ticket_id=ticket_id,
        phone=await customer_phone(session, customer.id),
        channel="telegram",
        created_at=at,
        due_at=hours.next_opening(at),
    )
    session.add(request)
    await session.flush()
    return request, True


async def fill_missing_phone(session: AsyncSession, customer_id: int, phone: str) -> int:
    """Give open requests that waited for a phone number this one; returns how many."""
    result = await session.execute(
        update(CallbackRequest)
        .where(
            CallbackRequest.customer_id == customer_id,
            CallbackRequest.phone == "",
            CallbackRequest.status.in_(OPEN_CALLBACK_STATUSES),
        )
        .values(phone=phone)
    )
    return result.rowcount or 0

"""Callback tasks: outbound calls to offer to the next free agent.

They are ``CallbackRequest`` rows, the same table the Telegram "call me" button fills; placing
the call through Asterisk is the telephony's job, which reads ``pending_callbacks``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telegram.models import (
    OPEN_CALLBACK_STATUSES,
    CallbackRequest,
    CallbackStatus,
)


async def request_callback(
    session: AsyncSession,
    *,
    customer_id: int,
    ticket_id: int | None,
    phone: str,
    channel: str,
    due_at: datetime,
    note: str = "",
) -> CallbackRequest:
    request = CallbackRequest(
        customer_id=customer_id,
        ticket_id=ticket_id,
        phone=phone,
        channel=channel,
        status=CallbackStatus.REQUESTED,
        created_at=due_at,
        due_at=due_at,
        note=note,
    )
    session.add(request)
    await session.flush()
    return request


async def open_callback(session: AsyncSession, customer_id: int) -> CallbackRequest | None:
    """The customer's callback still waiting to be made, if any."""
    return await session.scalar(
        select(CallbackRequest)
        .where(
            CallbackRequest.customer_id == customer_id,
            CallbackRequest.status.in_(OPEN_CALLBACK_STATUSES),
        )
        .limit(1)
    )


async def pending_callbacks(session: AsyncSession) -> list[CallbackRequest]:
    """Callbacks nobody has taken yet, oldest due first; those without a phone are left out."""
    return list(
        await session.scalars(
            select(CallbackRequest)
            .where(
                CallbackRequest.status == CallbackStatus.REQUESTED,
                CallbackRequest.phone != "",
            )
            .order_by(CallbackRequest.due_at, CallbackRequest.id)
        )
    )

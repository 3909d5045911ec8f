"""Outbox rows queued at most once per key, whoever queues them first: the bus handler right
after the commit or the catch-up scan later (the outbox's unique ``dedupe_key``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.models import Outbox
from callcenter.outbox import enqueue


async def enqueue_once(session: AsyncSession, key: str, **row: Any) -> bool:
    """Queue the row unless one with ``key`` exists; a concurrent insert of the same key fails
    the transaction with IntegrityError (the other one queued it)."""
    if await session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
        return False
    enqueue(session, dedupe_key=key, **row)
    return True

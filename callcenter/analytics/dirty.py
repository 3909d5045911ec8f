"""Changes to a customer's history that new ids and ticket times do not reveal (a merge, an
erasure) are marked here, in the changing transaction, for the refresher to recompute."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.analytics.models import DirtyCustomer


async def mark_customers(session: AsyncSession, customer_ids: Iterable[int]) -> None:
    values = [{"customer_id": c} for c in sorted(set(customer_ids))]
    if values:
        await session.execute(insert(DirtyCustomer.__table__), values)

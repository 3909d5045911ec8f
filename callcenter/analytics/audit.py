"""The ten-customer audit: random customers who used two or more channels in the range.

For each, the path across channels, how long each inbound contact waited for our answer, and
for calls whether the screen-pop put the customer's previous contact in front of the agent.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.analytics.figures import Filters, Table
from callcenter.analytics.models import ContactRollup
from callcenter.analytics.refresh import Calendar
from callcenter.models import (
    OUTBOUND_UNREACHED,
    Call,
    CallOutcome,
    Channel,
    Customer,
    Direction,
    Interaction,
    ScreenPop,
)

SAMPLE = 10
EXACT_BELOW = 50_000
"""Up to this many contacts in the range, every eligible customer is listed and sampled from;
above it, customers are found through random moments (busier customers are likelier)."""
PROBES = 200
PROBE_ROUND = 25
PATH_LIMIT = 40


def _inbound(start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    return [
        Interaction.occurred_at >= start,
        Interaction.occurred_at < end,
        Interaction.direction == Direction.INBOUND,
        Interaction.channel != Channel.NOTE,
    ]


async def _eligible_all(session: AsyncSession, where: list[ColumnElement[bool]]) -> list[int]:
    query = (
        select(Interaction.customer_id)
        .where(*where)
        .group_by(Interaction.customer_id)
        .having(func.count(func.distinct(Interaction.channel)) >= 2)
        .order_by(Interaction.customer_id)
    )
    return list(await session.scalars(query))


async def _eligible_probed(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    start: datetime,
    end: datetime,
    rng: random.Random,
) -> list[int]:
    """Customers of the first contacts after random moments, ``PROBE_ROUND`` moments a query."""
    found: list[int] = []
    for _ in range(PROBES // PROBE_ROUND):
        moments = sorted(start + (end - start) * rng.random() for _ in range(PROBE_ROUND))
        firsts = [
            select(Interaction.customer_id)
            .where(*where, Interaction.occurred_at >= moment)
            .order_by(Interaction.occurred_at)
            .limit(1)
            .subquery()
            .select()
            for moment in moments
        ]
        candidates = list(dict.fromkeys(await session.scalars(union_all(*firsts))))
        candidates = [c for c in candidates if c not in found]
        if candidates:
            channels = dict(
                (
                    await session.execute(
                        select(
                            Interaction.customer_id, func.count(func.distinct(Interaction.channel))
                        )
                        .where(*where, Interaction.customer_id.in_(candidates))
                        .group_by(Interaction.customer_id)
                    )
                ).all()
            )
            found += [c for c in candidates if channels.get(c, 0) >= 2][: SAMPLE - len(found)]
        if len(found) == SAMPLE:
            break
    return found


async def audit(
    session: AsyncSession,
    calendar: Calendar,
    f: Filters,
    rng: random.Random,
    *,
    exact_below: int = EXACT_BELOW,
) -> list[Table]:
    start, end = calendar.bounds(f.first, f.last)
    where = _inbound(start, end)
    contacts = await session.scalar(
        select(func.coalesce(func.sum(ContactRollup.contacts), 0)).where(
            ContactRollup.day >= f.first, ContactRollup.day <= f.last
        )
    )
    if contacts <= exact_below:
        eligible = await _eligible_all(session, where)
        chosen = sorted(rng.sample(eligible, min(SAMPLE, len(eligible))))
    else:
        chosen = sorted(await _eligible_probed(session, where, start, end, rng))
    table = Table(
        "audit",
        [
            "analytics.customer",
            "analytics.name",
            "analytics.when",
            "analytics.channel",
            "analytics.direction",
            "analytics.response",
            "analytics.pop",
        ],
        kinds=["int", "text", "when", "channel", "direction", "seconds", "pop"],
    )
    table.rows = await _paths(session, chosen, start, end)
    return [table]


async def _paths(
    session: AsyncSession, customers: list[int], start: datetime, end: datetime
) -> list[list[object]]:
    if not customers:
        return []
    names = dict(
        (
            await session.execute(
                select(Customer.id, Customer.display_name).where(Customer.id.in_(customers))
            )
        ).all()
    )
    rows = (
        await session.execute(
            select(
                Interaction.customer_id,
                Interaction.id,
                Interaction.occurred_at,
                Interaction.channel,
                Interaction.direction,
                Call.linkedid,
                Call.outcome,
                Call.wait_seconds,
            )
            .outerjoin(Call, Call.interaction_id == Interaction.id)
            .where(
                Interaction.customer_id.in_(customers),
                Interaction.occurred_at >= start,
                Interaction.occurred_at < end,
                Interaction.channel != Channel.NOTE,
                Interaction.direction != Direction.INTERNAL,
            )
            .order_by(Interaction.customer_id, Interaction.occurred_at, Interaction.id)
        )
    ).all()
    pops = await _pops(session, [r.linkedid for r in rows if r.linkedid])
    by_customer: dict[int, list[Any]] = {c: [] for c in customers}
    for row in rows:
        if len(by_customer[row.customer_id]) < PATH_LIMIT:
            by_customer[row.customer_id].append(row)
    return [
        step
        for customer_id, path in by_customer.items()
        for step in _path(customer_id, names.get(customer_id, ""), path, pops)
    ]


def _reached(row: Any) -> bool:
    """An outbound contact that reached the customer (a callback that rang out is no answer)."""
    return row.direction == Direction.OUTBOUND and row.outcome not in OUTBOUND_UNREACHED


def _path(
    customer_id: int, name: str, rows: list[Any], pops: dict[str, set[int]]
) -> list[list[object]]:
    path: list[list[object]] = []
    previous: int | None = None
    for n, row in enumerate(rows):
        if row.direction != Direction.INBOUND:
            continue
        if row.outcome is not None:
            response = row.wait_seconds if row.outcome == CallOutcome.ANSWERED else None
        else:
            reply = next((r for r in rows[n + 1 :] if _reached(r)), None)
            response = int((reply.occurred_at - row.occurred_at).total_seconds()) if reply else None
        pop = None
        if row.channel == Channel.CALL and previous is not None:
            shown = pops.get(row.linkedid)
            pop = "none" if shown is None else ("shown" if previous in shown else "missing")
        path.append(
            [
                customer_id,
                name,
                row.occurred_at,
                row.channel.value,
                row.direction.value,
                response,
                pop,
            ]
        )
        previous = row.id
    return path


async def _pops(session: AsyncSession, linkedids: list[str]) -> dict[str, set[int]]:
    """The interactions each call's screen-pops showed (all agents it rang, together)."""
    shown: dict[str, set[int]] = {}
    if not linkedids:
        return shown
    rows = await session.execute(
        select(ScreenPop.linkedid, ScreenPop.interaction_ids).where(
            ScreenPop.linkedid.in_(linkedids)
        )
    )
    for linkedid, ids in rows:
        shown.setdefault(linkedid, set()).update(ids or ())
    return shown

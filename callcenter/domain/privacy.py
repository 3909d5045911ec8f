"""Customer data rights: export everything about one person, or erase it.

Erasure keeps the rows (so counts of calls, messages and tickets stay true for analytics) but
removes what identifies the person: identities and order references are deleted; message
texts become ``ERASED``; HTML, attachments, external ids, recordings, subjects and the name
are cleared. Profiles merged into the customer are erased with it. Files (recordings,
attachments) are returned, to be deleted after the transaction commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain import audit
from callcenter.domain.customers import get_customer
from callcenter.models import (
    Call,
    Customer,
    Identity,
    Interaction,
    MergeSuggestion,
    OrderRef,
    Outbox,
    OutboxStatus,
    Ticket,
    User,
)

log = logging.getLogger(__name__)

ERASED = "[erased]"
ERASED_TAG = "erased"


def _row(obj: Any) -> dict[str, Any]:
    values = {}
    for attr in inspect(obj).mapper.column_attrs:
        value = getattr(obj, attr.key)
        values[attr.key] = value.isoformat() if isinstance(value, datetime) else value
    return values


async def _profile_ids(session: AsyncSession, customer_id: int) -> list[int]:
    """The live profile and every profile merged into it, directly or through others."""
    ids, frontier = [customer_id], [customer_id]
    while frontier:
        frontier = list(
            await session.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier)))
        )
        frontier = [i for i in frontier if i not in ids]
        ids.extend(frontier)
    return ids


async def export_customer(
    session: AsyncSession, customer_id: int, *, actor: User | None = None
) -> dict[str, Any]:
    """Everything stored about one customer, as JSON-ready data; the export is audited."""
    customer = await get_customer(session, customer_id)
    ids = await _profile_ids(session, customer.id)

    async def rows(model: Any, *where: Any) -> list[dict[str, Any]]:
        return [_row(r) for r in await session.scalars(select(model).where(*where))]

    interactions = await rows(Interaction, Interaction.customer_id.in_(ids))
    tickets = await rows(Ticket, Ticket.customer_id.in_(ids))
    ticket_ids = [t["id"] for t in tickets]
    data = {
        "customer": _row(customer),
        "merged_profiles": await rows(Customer, Customer.id.in_(ids[1:])),
        "identities": await rows(Identity, Identity.customer_id.in_(ids)),
        "tickets": tickets,
        "interactions": interactions,
        "calls": await rows(Call, Call.interaction_id.in_([i["id"] for i in interactions])),
        "order_refs": await rows(OrderRef, OrderRef.customer_id.in_(ids)),
        "outbox": await rows(Outbox, Outbox.ticket_id.in_(ticket_ids)),
    }
    audit.record(
        session,
        "customer.export",
        actor=actor,
        target_type="customer",
        target_id=customer.id,
        details={"interactions": len(interactions), "tickets": len(tickets)},
    )
    await session.flush()
    return data


@dataclass
class Erasure:
    customer_id: int
    counts: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


async def erase_customer(
    session: AsyncSession, customer_id: int, *, actor: User | None = None
) -> Erasure:
    """Remove what identifies a customer; the rows and their counts stay."""
    customer = await get_customer(session, customer_id)
    ids = await _profile_ids(session, customer.id)
    result = Erasure(customer.id)
    interaction_ids = list(
        await session.scalars(select(Interaction.id).where(Interaction.customer_id.in_(ids)))
    )
    ticket_ids = list(await session.scalars(select(Ticket.id).where(Ticket.customer_id.in_(ids))))

    for attachments in await session.scalars(
        select(Interaction.attachments).where(Interaction.id.in_(interaction_ids))
    ):
        result.files += [a["path"] for a in attachments or [] if isinstance(a.get("path"), str)]
    result.files += [
        p
        for p in await session.scalars(
            select(Call.recording_path).where(Call.interaction_id.in_(interaction_ids))
        )
        if p
    ]

    async def run(name: str, statement: Any) -> None:
        result.counts[name] = (await session.execute(statement)).rowcount or 0

    await run("identities", delete(Identity).where(Identity.customer_id.in_(ids)))
    await run("order_refs", delete(OrderRef).where(OrderRef.customer_id.in_(ids)))
    await run(
        "merge_suggestions",
        delete(MergeSuggestion).where(
            or_(MergeSuggestion.customer_id.in_(ids), MergeSuggestion.other_customer_id.in_(ids))
        ),
    )
    await run(
        "interactions",
        update(Interaction)
        .where(Interaction.id.in_(interaction_ids))
        .values(text=ERASED, html=None, attachments=[], order_numbers=[], external_id=None),
    )
    await run(
        "calls",
        update(Call)
        .where(Call.interaction_id.in_(interaction_ids))
        .values(recording_path=None, caller_number=""),
    )
    await run(
        "tickets",
        update(Ticket).where(Ticket.id.in_(ticket_ids)).values(subject=ERASED, order_numbers=[]),
    )
    await run(
        "outbox",
        update(Outbox)
        .where(Outbox.ticket_id.in_(ticket_ids))
        .values(recipient="", payload={}, dedupe_key=None, last_error="customer erased")
        .execution_options(synchronize_session=False),
    )
    await session.execute(
        update(Outbox)
        .where(Outbox.ticket_id.in_(ticket_ids), Outbox.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.FAILED)
    )
    await session.execute(
        update(Customer)
        .where(Customer.id.in_(ids))
        .values(display_name="", notes="", tags=[ERASED_TAG])
    )
    audit.record(
        session,
        "customer.erase",
        actor=actor,
        target_type="customer",
        target_id=customer.id,
        details={"profiles": ids, **result.counts},
    )
    await session.flush()
    await session.refresh(customer)
    return result


def remove_files(paths: list[str], root: Path) -> list[str]:
    """Delete erased recordings and attachments under ``root``; returns what could not go."""
    left: list[str] = []
    base = root.resolve()
    for raw in paths:
        path = (base / raw).resolve()
        if not path.is_relative_to(base):
            log.warning("not deleting %s: outside the data directory %s", path, base)
            left.append(raw)
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("could not delete %s: %s", path, exc)
            left.append(raw)
    return left

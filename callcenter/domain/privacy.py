"""Customer data rights: export everything about one person, or erase it.

Erasure keeps the rows that analytics count (interactions, calls, tickets, callbacks, survey
scores, with their times and outcomes) but removes what identifies the person: identities,
order references and merge suggestions are deleted; message texts become ``ERASED``; HTML,
attachments, external ids, recordings, subjects, caller numbers and the name are cleared;
outbox rows to the person's addresses lose their payload; kept raw Telegram updates and
unstorable mails from them are cleared or deleted; audit and rule-firing details are scrubbed
of their phone, address and name. Profiles merged into the customer are erased with it.
Files (recordings, attachments, kept mails) are returned, relative to the data directory, to
be deleted after the transaction commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.analytics.dirty import mark_customers
from callcenter.automation.models import RuleFiring, SurveyAnswer
from callcenter.channels.telegram.models import CallbackRequest
from callcenter.channels.telephony.models import CallSurvey
from callcenter.domain import audit
from callcenter.domain.customers import get_customer
from callcenter.domain.footprint import (
    Footprint,
    email_failures,
    failed_mail_path,
    gather,
    telegram_updates,
    unshared_files,
)
from callcenter.models import (
    AuditLog,
    Call,
    Customer,
    Identity,
    Interaction,
    MergeSuggestion,
    OrderRef,
    Outbox,
    OutboxStatus,
    ScreenPop,
    Ticket,
    User,
)
from callcenter.workspace_models import WrapUp

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


def _outbox_rows(found: Footprint) -> Any:
    return or_(
        Outbox.ticket_id.in_(found.ticket_ids),
        Outbox.recipient.in_(sorted(found.addresses)),
        Outbox.recipient.in_([f"customer:{i}" for i in found.ids]),  # CRM pushes
        *(  # webhook events without a ticket (calls, automatic mail)
            Outbox.recipient.like(f"subscription:%:customer:{i}") for i in found.ids
        ),
    )


def _screen_pops(found: Footprint) -> Any:
    return or_(
        ScreenPop.customer_id.in_(found.ids),
        ScreenPop.caller_number.in_(sorted(found.phones)),
        ScreenPop.linkedid.in_(found.linkedids),
    )


def _rule_firings(found: Footprint) -> Any:
    return or_(RuleFiring.customer_id.in_(found.ids), RuleFiring.ticket_id.in_(found.ticket_ids))


def _audit_entries(found: Footprint) -> Any:
    return (AuditLog.target_type == "customer") & AuditLog.target_id.in_(
        [str(i) for i in found.ids]
    )


def _merge_suggestions(found: Footprint) -> Any:
    return or_(
        MergeSuggestion.customer_id.in_(found.ids),
        MergeSuggestion.other_customer_id.in_(found.ids),
        MergeSuggestion.evidence.in_(sorted(found.addresses)),
    )


async def export_customer(
    session: AsyncSession,
    customer_id: int,
    *,
    actor: User | None = None,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Everything stored about one customer, as JSON-ready data; the export is audited.

    With ``data_dir``, mail that could not be stored is matched on its content too.
    """
    customer = await get_customer(session, customer_id)
    found = await gather(session, await _profile_ids(session, customer.id))

    async def rows(model: Any, *where: Any) -> list[dict[str, Any]]:
        return [_row(r) for r in await session.scalars(select(model).where(*where))]

    interactions = await rows(Interaction, Interaction.id.in_(found.interaction_ids))
    tickets = await rows(Ticket, Ticket.id.in_(found.ticket_ids))
    data = {
        "customer": _row(customer),
        "merged_profiles": await rows(Customer, Customer.id.in_(found.ids[1:])),
        "identities": await rows(Identity, Identity.customer_id.in_(found.ids)),
        "tickets": tickets,
        "interactions": interactions,
        "calls": await rows(Call, Call.interaction_id.in_(found.interaction_ids)),
        "call_surveys": await rows(CallSurvey, CallSurvey.linkedid.in_(found.linkedids)),
        "wrapups": await rows(WrapUp, WrapUp.interaction_id.in_(found.interaction_ids)),
        "survey_answers": await rows(SurveyAnswer, SurveyAnswer.customer_id.in_(found.ids)),
        "callback_requests": await rows(
            CallbackRequest, CallbackRequest.customer_id.in_(found.ids)
        ),
        "screen_pops": await rows(ScreenPop, _screen_pops(found)),
        "order_refs": await rows(OrderRef, OrderRef.customer_id.in_(found.ids)),
        "merge_suggestions": await rows(MergeSuggestion, _merge_suggestions(found)),
        "outbox": await rows(Outbox, _outbox_rows(found)),
        "rule_firings": await rows(RuleFiring, _rule_firings(found)),
        "telegram_updates": [_row(u) for u in await telegram_updates(session, found)],
        "email_failures": [_row(f) for f in await email_failures(session, found, data_dir)],
        "audit": await rows(AuditLog, _audit_entries(found)),
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
    """Relative to the data directory."""


async def erase_customer(
    session: AsyncSession,
    customer_id: int,
    *,
    actor: User | None = None,
    data_dir: Path | None = None,
) -> Erasure:
    """Remove what identifies a customer; the rows and their counts stay.

    With ``data_dir``, mail that could not be stored is matched on its content too.
    """
    customer = await get_customer(session, customer_id)
    found = await gather(session, await _profile_ids(session, customer.id))
    ids = found.ids
    result = Erasure(customer.id)

    attachments = [
        record
        for records in await session.scalars(
            select(Interaction.attachments).where(Interaction.id.in_(found.interaction_ids))
        )
        for record in records or []
    ]
    result.files += await unshared_files(session, found, attachments)
    result.files += [
        p
        for p in await session.scalars(
            select(Call.recording_path).where(Call.interaction_id.in_(found.interaction_ids))
        )
        if p
    ]

    async def run(name: str, statement: Any) -> None:
        outcome = await session.execute(statement.execution_options(synchronize_session=False))
        result.counts[name] = outcome.rowcount or 0

    await run("identities", delete(Identity).where(Identity.customer_id.in_(ids)))
    await run("order_refs", delete(OrderRef).where(OrderRef.customer_id.in_(ids)))
    await run("merge_suggestions", delete(MergeSuggestion).where(_merge_suggestions(found)))
    await run(
        "interactions",
        update(Interaction)
        .where(Interaction.id.in_(found.interaction_ids))
        .values(text=ERASED, html=None, attachments=[], order_numbers=[], external_id=None),
    )
    await run(
        "calls",
        update(Call)
        .where(Call.interaction_id.in_(found.interaction_ids))
        .values(recording_path=None, caller_number=""),
    )
    await run(
        "tickets",
        update(Ticket)
        .where(Ticket.id.in_(found.ticket_ids))
        .values(subject=ERASED, order_numbers=[]),
    )
    await run(
        "callback_requests",
        update(CallbackRequest)
        .where(CallbackRequest.customer_id.in_(ids))
        .values(phone="", note=""),
    )
    await run(
        "wrapups",
        update(WrapUp)
        .where(WrapUp.interaction_id.in_(found.interaction_ids))
        .values(summary=ERASED),
    )
    await run("screen_pops", update(ScreenPop).where(_screen_pops(found)).values(caller_number=""))
    await session.execute(
        update(Outbox)
        .where(_outbox_rows(found), Outbox.status == OutboxStatus.PENDING)
        .values(status=OutboxStatus.FAILED)
        .execution_options(synchronize_session=False)
    )
    await run(
        "outbox",
        update(Outbox)
        .where(_outbox_rows(found))
        .values(
            recipient="",
            payload={},
            dedupe_key=None,
            external_id=None,
            last_error="customer erased",
        ),
    )
    updates = await telegram_updates(session, found)
    for kept in updates:
        kept.raw, kept.error = None, ERASED
    result.counts["telegram_updates"] = len(updates)
    failures = await email_failures(session, found, data_dir)
    for failure in failures:
        result.files.append(str(failed_mail_path(failure)))
        await session.delete(failure)
    result.counts["email_failures"] = len(failures)
    for firing in await session.scalars(select(RuleFiring).where(_rule_firings(found))):
        firing.details = found.scrub(firing.details)
    for entry in await session.scalars(select(AuditLog).where(_audit_entries(found))):
        entry.details = found.scrub(entry.details)
    await session.execute(
        update(Customer)
        .where(Customer.id.in_(ids))
        .values(display_name="", notes="", tags=[ERASED_TAG])
        .execution_options(synchronize_session=False)
    )
    await mark_customers(session, ids)
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
    """Delete erased files under ``root`` (the data directory); returns what could not go."""
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

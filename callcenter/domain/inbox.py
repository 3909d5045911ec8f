"""Storing an inbound message from any channel: customer, classification, ticket, interaction.

Every channel adapter (Telegram, email, telephony) turns what it received into an
``InboundMessage`` and calls ``ingest``, or ``ingest_many`` for a batch. A second delivery of the
same message (same channel and external id) is recognised and stored nothing, even when two
deliveries race.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, insert, literal, select, true, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.classify import Classification, classify
from callcenter.domain.customers import get_customer, resolve_customer
from callcenter.domain.events import MessageReceived, TicketCreated
from callcenter.domain.identity import normalize
from callcenter.models import (
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    OrderRef,
    Ticket,
    TicketStatus,
    utcnow,
)

log = logging.getLogger(__name__)

OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
FOLLOW_UP_WINDOW = timedelta(days=7)
"""A message with no intent and no order number joins the newest open ticket this recent."""
NEWEST_FIRST = (Ticket.updated_at.desc(), Ticket.id.desc())


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    external_id: str
    identity_kind: IdentityKind
    identity_value: str
    occurred_at: datetime
    text: str
    display_name: str = ""
    subject: str = ""
    html: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    ticket_hint: int | None = None
    """A ticket the channel already knows this belongs to (email threading, ``[#1234]``)."""
    automatic: bool = False
    """Auto-replies, bounces, mailing lists: recorded, but never open or reopen a ticket."""
    language: str = "ru"


@dataclass
class IngestResult:
    interaction: Interaction
    customer: Customer
    ticket: Ticket | None
    duplicate: bool = False
    customer_created: bool = False
    ticket_created: bool = False
    events: list[object] = field(default_factory=list)


async def _existing(
    session: AsyncSession, channel: Channel, external_id: str
) -> Interaction | None:
    return await session.scalar(
        select(Interaction).where(
            Interaction.channel == channel, Interaction.external_id == external_id
        )
    )


async def _duplicate(session: AsyncSession, interaction: Interaction) -> IngestResult:
    customer = await get_customer(session, interaction.customer_id)
    ticket = await session.get(Ticket, interaction.ticket_id) if interaction.ticket_id else None
    return IngestResult(interaction, customer, ticket, duplicate=True)


async def _hinted_ticket(session: AsyncSession, customer: Customer, hint: int) -> Ticket | None:
    ticket = await session.get(Ticket, hint)
    if ticket is None or (await get_customer(session, ticket.customer_id)).id != customer.id:
        return None
    _reopen(ticket)
    return ticket


def _reopen(ticket: Ticket) -> None:
    if ticket.status not in OPEN_STATUSES:
        ticket.status = TicketStatus.OPEN
        ticket.solved_at = None
        ticket.reopened_count += 1


async def _matching_ticket(
    session: AsyncSession, customer: Customer, found: Classification, at: datetime
) -> Ticket | None:
    open_tickets = list(
        await session.scalars(
            select(Ticket)
            .where(Ticket.customer_id == customer.id, Ticket.status.in_(OPEN_STATUSES))
            .order_by(*NEWEST_FIRST)
        )
    )
    return _pick(open_tickets, found, at)


def _pick(open_tickets: Sequence[Ticket], found: Classification, at: datetime) -> Ticket | None:
    """Of open tickets, newest first: the one about the same order, else the same intent,
    else a recent one as a follow-up."""
    orders, intents = set(found.order_numbers), set(found.intents)
    if orders:
        for ticket in open_tickets:
            if not orders.isdisjoint(ticket.order_numbers):
                return ticket
    if intents:
        for ticket in open_tickets:
            if not intents.isdisjoint(ticket.intents) and not (orders and ticket.order_numbers):
                return ticket
    if not orders and not intents and open_tickets:
        newest = open_tickets[0]
        if at - newest.updated_at <= FOLLOW_UP_WINDOW:
            return newest
    return None


def _subject(message: InboundMessage) -> str:
    text = message.subject.strip() or " ".join(message.text.split())
    return text[:200]


def _new_ticket(customer: Customer, message: InboundMessage) -> Ticket:
    return Ticket(
        customer_id=customer.id,
        channel=message.channel,
        subject=_subject(message),
        created_at=message.occurred_at,
        updated_at=message.occurred_at,
    )


def _tag(ticket: Ticket, message: InboundMessage, found: Classification) -> None:
    """Add the message's intents and order numbers to its ticket and move the ticket's time."""
    ticket.intents = sorted(set(ticket.intents or []) | set(found.intents))
    ticket.order_numbers = list(
        dict.fromkeys([*(ticket.order_numbers or []), *found.order_numbers])
    )
    ticket.updated_at = max(ticket.updated_at or message.occurred_at, message.occurred_at)


async def _remember_orders(
    session: AsyncSession, customer_id: int, ticket_id: int | None, numbers: tuple[str, ...]
) -> None:
    for number in numbers:
        known = await session.scalar(
            select(OrderRef.id).where(
                OrderRef.order_number == number,
                OrderRef.customer_id == customer_id,
                OrderRef.ticket_id == ticket_id,
            )
        )
        if known is None:
            session.add(OrderRef(order_number=number, customer_id=customer_id, ticket_id=ticket_id))


async def _file_under_ticket(
    session: AsyncSession, customer: Customer, message: InboundMessage, found: Classification
) -> tuple[Ticket | None, bool]:
    """The ticket this message belongs to, created if needed; None for automatic mail."""
    if message.automatic:
        return None, False
    ticket = None
    if message.ticket_hint is not None:
        ticket = await _hinted_ticket(session, customer, message.ticket_hint)
    if ticket is None:
        ticket = await _matching_ticket(session, customer, found, message.occurred_at)
    created = ticket is None
    if ticket is None:
        ticket = _new_ticket(customer, message)
        session.add(ticket)
    _tag(ticket, message, found)
    await session.flush()
    return ticket, created


async def ingest(
    session: AsyncSession,
    message: InboundMessage,
    *,
    classifier: Callable[[str], Classification] = classify,
    region: str = "RU",
) -> IngestResult:
    """Store one inbound message once; the caller commits and then publishes ``result.events``."""
    existing = await _existing(session, message.channel, message.external_id)
    if existing is not None:
        return await _duplicate(session, existing)

    customer, customer_created = await resolve_customer(
        session,
        message.identity_kind,
        message.identity_value,
        display_name=message.display_name,
        source=message.channel.value,
        language=message.language,
        region=region,
    )
    found = classifier("\n".join(filter(None, [message.subject, message.text])))

    try:
        async with session.begin_nested():
            ticket, ticket_created = await _file_under_ticket(session, customer, message, found)
            interaction = _interaction(message, found, customer, ticket)
            session.add(interaction)
    except IntegrityError:
        # Another delivery of the same message committed first: drop our ticket work too.
        raced = await _existing(session, message.channel, message.external_id)
        if raced is None:
            raise
        return await _duplicate(session, raced)
    await _remember_orders(session, customer.id, ticket.id if ticket else None, found.order_numbers)

    return _stored(message, found, interaction, customer, ticket, customer_created, ticket_created)


def _interaction(
    message: InboundMessage, found: Classification, customer: Customer, ticket: Ticket | None
) -> Interaction:
    return Interaction(**_interaction_row(message, found, customer, ticket))


def _interaction_row(
    message: InboundMessage,
    found: Classification,
    customer: Customer,
    ticket: Ticket | None,
) -> dict[str, Any]:
    return {
        "customer_id": customer.id,
        "ticket_id": ticket.id if ticket else None,
        "channel": message.channel,
        "direction": Direction.INBOUND,
        "external_id": message.external_id,
        "text": message.text,
        "html": message.html,
        "attachments": message.attachments,
        "intents": list(found.intents),
        "order_numbers": list(found.order_numbers),
        "occurred_at": message.occurred_at,
    }


def _stored(
    message: InboundMessage,
    found: Classification,
    interaction: Interaction,
    customer: Customer,
    ticket: Ticket | None,
    customer_created: bool,
    ticket_created: bool,
) -> IngestResult:
    """The result of a newly stored message, with its events."""
    result = IngestResult(
        interaction,
        customer,
        ticket,
        customer_created=customer_created,
        ticket_created=ticket_created,
    )
    if ticket_created and ticket is not None:
        result.events.append(TicketCreated(ticket.id, customer.id, message.channel))
    result.events.append(
        MessageReceived(
            customer_id=customer.id,
            ticket_id=ticket.id if ticket else None,
            interaction_id=interaction.id,
            channel=message.channel,
            intents=found.intents,
            order_numbers=found.order_numbers,
            occurred_at=message.occurred_at,
            automatic=message.automatic,
        )
    )
    return result


async def ingest_many(
    session: AsyncSession,
    messages: Sequence[InboundMessage],
    *,
    classifier: Callable[[str], Classification] = classify,
    region: str = "RU",
    savepoint: bool = True,
    assume_new: bool = False,
) -> list[IngestResult]:
    """Store a batch exactly as ``ingest`` would one message after another, in a handful of
    set-based statements instead of some twenty per message.

    Messages later in the batch see the earlier ones: a repeated external id is a duplicate,
    a customer created for one message is found by the next, and a ticket opened or moved by
    one is the ticket the next may join. Identities are normalised and texts classified before
    anything is written; on an error nothing of the batch is stored and the error propagates
    (store the messages one by one with ``ingest`` to keep the rest). When a concurrent writer
    stores one of the messages or identities first, the batch's writes are rolled back and the
    messages are ingested one by one, which settles that race as ``ingest`` does.

    ``savepoint=False`` saves the savepoint's round trips for a caller that rolls back its
    whole transaction on an error: an IntegrityError then propagates instead. With it,
    ``assume_new`` skips looking for stored duplicates (one query) for a caller that knows
    them to be new: a stored one then fails on its unique key, and the caller's redo finds it.
    That path (the Telegram worker's) also skips most ORM work: open tickets are read as plain
    rows and interactions inserted with Core, so the results' interactions and the tickets
    read that way are transient copies (their ids and columns are right; changing them
    stores nothing).
    """
    if not messages:
        return []
    if not savepoint:
        return await _Batch(session, classifier, region).run(messages, assume_new=assume_new)
    await session.flush()
    try:
        async with session.begin_nested():
            return await _Batch(session, classifier, region).run(messages)
    except IntegrityError:
        log.info("a batch of %d messages raced another writer; storing one by one", len(messages))
    return [await ingest(session, m, classifier=classifier, region=region) for m in messages]


def _ticket_state(ticket: Ticket) -> tuple[object, ...]:
    """What a flush would compare to decide whether the ticket changed."""
    return (
        ticket.status,
        ticket.solved_at,
        ticket.reopened_count,
        ticket.intents,
        ticket.order_numbers,
        ticket.updated_at,
    )


@dataclass
class _OpenTicket:
    """An open ticket as ``_pick`` and ``_tag`` see it, read as a plain row (``assume_new``):
    most of the batch's customers' open tickets are read, few are touched."""

    id: int
    customer_id: int
    status: TicketStatus
    solved_at: datetime | None
    reopened_count: int
    intents: list[str]
    order_numbers: list[str]
    updated_at: datetime


_OPEN_COLUMNS = [getattr(Ticket, f.name) for f in fields(_OpenTicket)]


def _elements(column: Any, dialect: str) -> Any:
    """The strings of a JSON array column, as a table to join (one row per element)."""
    if dialect == "postgresql":
        return func.jsonb_array_elements_text(column).table_valued("value").render_derived()
    return func.json_each(column).table_valued("value")


def _no_orders(dialect: str) -> ColumnElement[bool]:
    length = func.jsonb_array_length if dialect == "postgresql" else func.json_array_length
    return func.coalesce(length(Ticket.order_numbers), 0) == 0


def _candidates(
    where: tuple[ColumnElement[bool], ...], filed: list[tuple[int, Classification]], dialect: str
) -> Select[Any]:
    """The ids of the open tickets ``_pick`` could choose for the batch's messages, so that a
    customer's long list of open tickets is not read whole for every batch.

    Per customer: the newest (a follow-up's); those sharing one of the batch's order numbers;
    per intent of the batch, the newest with that intent, and the newest few with it and no
    order numbers. Filing changes only tickets read here, and only by adding intents and
    order numbers and moving them to the top; the one choice that can lapse is "with intent,
    no order numbers" (a message with orders filed under such a ticket gives it some), at most
    once per such message, so reading one more of those than the customer has messages with
    order numbers in the batch keeps the choice exact."""
    orders = {n for _, found in filed for n in found.order_numbers}
    intents = {i for _, found in filed for i in found.intents}
    with_orders: dict[int, int] = {}
    for customer_id, found in filed:
        if found.order_numbers:
            with_orders[customer_id] = with_orders.get(customer_id, 0) + 1
    depth = 1 + max(with_orders.values(), default=0)

    rank = func.row_number().over(partition_by=Ticket.customer_id, order_by=NEWEST_FIRST)
    newest = select(Ticket.id, rank.label("rank")).where(*where).subquery()
    parts: list[Select[Any]] = [select(newest.c.id).where(newest.c.rank == 1)]
    if orders:
        number = _elements(Ticket.order_numbers, dialect)
        parts.append(
            select(Ticket.id).join(number, true()).where(*where, number.c.value.in_(orders))
        )
    if intents:
        intent = _elements(Ticket.intents, dialect)
        no_orders = _no_orders(dialect)
        by_intent = func.row_number().over(
            partition_by=(Ticket.customer_id, intent.c.value, no_orders), order_by=NEWEST_FIRST
        )
        ranked = (
            select(Ticket.id, no_orders.label("no_orders"), by_intent.label("rank"))
            .join(intent, true())
            .where(*where, intent.c.value.in_(intents))
            .subquery()
        )
        parts.append(
            select(ranked.c.id).where(
                (ranked.c.rank == 1) | (ranked.c.no_orders & (ranked.c.rank <= literal(depth)))
            )
        )
    return union(*parts) if len(parts) > 1 else parts[0]  # type: ignore[return-value]


class _Batch:
    """``ingest_many``'s work: the reads up front, the decisions in memory, then one flush for
    customers, one for identities and tickets, one for interactions and order numbers (with
    ``assume_new``: Core statements for the tickets read, interactions and order numbers)."""

    def __init__(
        self, session: AsyncSession, classifier: Callable[[str], Classification], region: str
    ) -> None:
        self.session = session
        self.classifier = classifier
        self.region = region
        self.open: dict[int, list[Ticket | _OpenTicket]] = {}
        """Each involved customer's open tickets, newest first, as the batch changes them."""
        self.plain = False
        """Open tickets are read as ``_OpenTicket`` rows and changed with one UPDATE."""
        self.touched: dict[int, tuple[_OpenTicket, tuple[object, ...]]] = {}
        """Plain tickets the batch filed messages under, with their state as read."""
        self.hinted: dict[int, Ticket] = {}
        self.loaded: list[object] = []
        """Rows read up front; held here because the session's identity map is weak."""

    async def run(
        self, messages: Sequence[InboundMessage], *, assume_new: bool = False
    ) -> list[IngestResult]:
        session = self.session
        self.plain = assume_new and all(m.ticket_hint is None for m in messages)
        existing = {} if assume_new else await self._existing(messages)
        first: dict[tuple[Channel, str], int] = {}
        new: list[int] = []
        for index, message in enumerate(messages):
            key = (message.channel, message.external_id)
            if key not in existing and key not in first:
                first[key] = index
                new.append(index)
        values = {
            i: normalize(messages[i].identity_kind, messages[i].identity_value, self.region)
            for i in new
        }
        found = {
            i: self.classifier("\n".join(filter(None, [messages[i].subject, messages[i].text])))
            for i in new
        }
        customers, created = await self._customers(messages, new, values)
        filed = [i for i in new if not messages[i].automatic]
        await self._load_tickets(
            {customers[i].id for i in filed},
            {messages[i].ticket_hint for i in filed},
            [(customers[i].id, found[i]) for i in filed],
        )
        known_orders = await self._known_orders(
            {n for i in new for n in found[i].order_numbers}, {c.id for c in customers.values()}
        )

        tickets: dict[int, Ticket | None] = dict.fromkeys(new)
        filed_under: dict[int, Ticket | _OpenTicket] = {}
        opened: set[int] = set()
        for i in filed:
            filed_under[i], is_new = await self._file(messages[i], customers[i], found[i])
            if is_new:
                opened.add(i)
        await session.flush()
        tickets.update(await self._write_plain(filed_under))

        orders: list[dict[str, Any]] = []
        for i in new:
            ticket_id = tickets[i].id if tickets[i] else None  # type: ignore[union-attr]
            for number in found[i].order_numbers:
                if (number, customers[i].id, ticket_id) not in known_orders:
                    known_orders.add((number, customers[i].id, ticket_id))
                    orders.append(
                        {
                            "order_number": number,
                            "customer_id": customers[i].id,
                            "ticket_id": ticket_id,
                        }
                    )
        if assume_new:
            interactions = await self._insert(messages, new, found, customers, tickets, orders)
        else:
            interactions = {
                i: _interaction(messages[i], found[i], customers[i], tickets[i]) for i in new
            }
            session.add_all(interactions.values())
            session.add_all(OrderRef(**row) for row in orders)
            await session.flush()

        results: list[IngestResult] = []
        stored: dict[tuple[Channel, str], IngestResult] = {}
        for index, message in enumerate(messages):
            key = (message.channel, message.external_id)
            if key in existing:
                results.append(await _duplicate(session, existing[key]))
            elif first[key] != index:
                earlier = stored[key]
                results.append(
                    IngestResult(earlier.interaction, earlier.customer, earlier.ticket, True)
                )
            else:
                stored[key] = _stored(
                    message,
                    found[index],
                    interactions[index],
                    customers[index],
                    tickets[index],
                    index in created,
                    index in opened,
                )
                results.append(stored[key])
        return results

    async def _insert(
        self,
        messages: Sequence[InboundMessage],
        new: list[int],
        found: dict[int, Classification],
        customers: dict[int, Customer],
        tickets: dict[int, Ticket | None],
        orders: list[dict[str, Any]],
    ) -> dict[int, Interaction]:
        """The interactions and order numbers in two INSERTs instead of a flush of ORM objects
        (a known duplicate fails on its unique key); the interactions returned are transient
        copies of the rows, with their ids."""
        now = utcnow()
        rows = [
            _interaction_row(messages[i], found[i], customers[i], tickets[i]) | {"created_at": now}
            for i in new
        ]
        ids = await self.session.scalars(
            insert(Interaction).returning(Interaction.id, sort_by_parameter_order=True), rows
        )
        if orders:
            await self.session.execute(insert(OrderRef), orders)
        return {
            i: Interaction(id=interaction_id, **row)
            for i, row, interaction_id in zip(new, rows, ids, strict=True)
        }

    async def _existing(
        self, messages: Sequence[InboundMessage]
    ) -> dict[tuple[Channel, str], Interaction]:
        by_channel: dict[Channel, set[str]] = {}
        for message in messages:
            by_channel.setdefault(message.channel, set()).add(message.external_id)
        found: dict[tuple[Channel, str], Interaction] = {}
        for channel, ids in by_channel.items():
            rows = await self.session.scalars(
                select(Interaction).where(
                    Interaction.channel == channel, Interaction.external_id.in_(ids)
                )
            )
            for interaction in rows:
                found[(channel, interaction.external_id)] = interaction  # type: ignore[index]
        return found

    async def _customers(
        self,
        messages: Sequence[InboundMessage],
        new: list[int],
        values: dict[int, str],
    ) -> tuple[dict[int, Customer], set[int]]:
        """Each new message's customer, and the messages that created theirs."""
        session = self.session
        wanted: dict[IdentityKind, set[str]] = {}
        for i in new:
            wanted.setdefault(messages[i].identity_kind, set()).add(values[i])
        owners: dict[tuple[IdentityKind, str], int] = {}
        for kind, kind_values in wanted.items():
            rows = await session.execute(
                select(Identity.value, Customer)
                .join(Customer, Customer.id == Identity.customer_id)
                .where(Identity.kind == kind, Identity.value.in_(kind_values))
            )
            for value, owner in rows:
                owners[(kind, value)] = owner.id
                self.loaded.append(owner)

        by_identity: dict[tuple[IdentityKind, str], Customer] = {}
        customers: dict[int, Customer] = {}
        created: set[int] = set()
        pending: list[tuple[Customer, InboundMessage, str]] = []
        for i in new:
            message, key = messages[i], (messages[i].identity_kind, values[i])
            if key not in by_identity:
                if key in owners:
                    by_identity[key] = await get_customer(session, owners[key])
                else:
                    customer = Customer(
                        display_name=message.display_name.strip()[:200], language=message.language
                    )
                    session.add(customer)
                    pending.append((customer, message, values[i]))
                    by_identity[key] = customer
                    created.add(i)
            customers[i] = by_identity[key]
        if pending:
            await session.flush()
            session.add_all(
                Identity(
                    customer_id=customer.id,
                    kind=message.identity_kind,
                    value=value,
                    display=str(message.identity_value).strip()[:320],
                    source=message.channel.value,
                )
                for customer, message, value in pending
            )
        return customers, created

    async def _load(self, model: type[Customer] | type[Ticket], ids: Iterable[int]) -> None:
        """Bring rows into the identity map in one query, so that ``get`` finds them there."""
        ids = set(ids)
        if ids:
            self.loaded += await self.session.scalars(select(model).where(model.id.in_(ids)))

    async def _load_tickets(
        self,
        customer_ids: set[int],
        hints: set[int | None],
        filed: list[tuple[int, Classification]],
    ) -> None:
        """Each customer's open tickets the batch may file under: all of them, or as plain
        rows only those ``_pick`` could choose (``_candidates``)."""
        session = self.session
        self.open = {customer_id: [] for customer_id in customer_ids}
        if customer_ids:
            where = (Ticket.customer_id.in_(customer_ids), Ticket.status.in_(OPEN_STATUSES))
            if self.plain:
                dialect = session.get_bind().dialect.name
                candidates = _candidates(where, filed, dialect)
                for row in await session.execute(
                    select(*_OPEN_COLUMNS).where(Ticket.id.in_(candidates)).order_by(*NEWEST_FIRST)
                ):
                    self.open[row.customer_id].append(_OpenTicket(*row))
            else:
                for ticket in await session.scalars(
                    select(Ticket).where(*where).order_by(*NEWEST_FIRST)
                ):
                    self.open[ticket.customer_id].append(ticket)
        ids = {hint for hint in hints if hint is not None}
        if ids:
            rows = await session.scalars(select(Ticket).where(Ticket.id.in_(ids)))
            self.hinted = {ticket.id: ticket for ticket in rows}
            await self._load(Customer, {t.customer_id for t in self.hinted.values()})

    async def _known_orders(
        self, numbers: set[str], customer_ids: set[int]
    ) -> set[tuple[str, int, int | None]]:
        if not numbers or not customer_ids:
            return set()
        rows = await self.session.execute(
            select(OrderRef.order_number, OrderRef.customer_id, OrderRef.ticket_id).where(
                OrderRef.order_number.in_(numbers), OrderRef.customer_id.in_(customer_ids)
            )
        )
        return {(number, customer_id, ticket_id) for number, customer_id, ticket_id in rows}

    async def _write_plain(self, filed_under: dict[int, Ticket | _OpenTicket]) -> dict[int, Ticket]:
        """Store the changes to plain tickets with one UPDATE (as a flush would: only changed
        ones); returns each message's ticket, a transient copy where it is a plain one."""
        changed = [
            {
                "id": ticket.id,
                "intents": ticket.intents,
                "order_numbers": ticket.order_numbers,
                "updated_at": ticket.updated_at,
            }
            for ticket, before in self.touched.values()
            if _ticket_state(ticket) != before
        ]
        if changed:
            await self.session.execute(update(Ticket), changed)
        copies = {ticket.id: Ticket(**vars(ticket)) for ticket, _ in self.touched.values()}
        return {
            i: copies[ticket.id] if isinstance(ticket, _OpenTicket) else ticket
            for i, ticket in filed_under.items()
        }

    async def _file(
        self, message: InboundMessage, customer: Customer, found: Classification
    ) -> tuple[Ticket | _OpenTicket, bool]:
        """``_file_under_ticket`` against the batch's view of the customer's open tickets."""
        open_tickets = self.open.setdefault(customer.id, [])
        ticket = None
        before: tuple[object, ...] | None = None
        if message.ticket_hint is not None:
            hinted = self.hinted.get(message.ticket_hint)
            if hinted is not None and (
                (await get_customer(self.session, hinted.customer_id)).id == customer.id
            ):
                ticket, before = hinted, _ticket_state(hinted)
                _reopen(ticket)
                if ticket.customer_id == customer.id and ticket not in open_tickets:
                    open_tickets.append(ticket)
        if ticket is None:
            newest_first = sorted(open_tickets, key=lambda t: t.updated_at, reverse=True)
            ticket = _pick(newest_first, found, message.occurred_at)
            before = None if ticket is None else _ticket_state(ticket)
            if isinstance(ticket, _OpenTicket):
                self.touched.setdefault(ticket.id, (ticket, before))  # type: ignore[arg-type]
        created = ticket is None
        if ticket is None:
            ticket = _new_ticket(customer, message)
            ticket.status = TicketStatus.NEW
            self.session.add(ticket)
            open_tickets.append(ticket)
        _tag(ticket, message, found)
        if (
            before is not None
            and ticket.updated_at == before[-1]
            and _ticket_state(ticket) != before
        ):
            # Stored one message at a time, this change would be flushed without a new time
            # and the column's onupdate would stamp it; the next message must see that.
            ticket.updated_at = utcnow()
        return ticket, created

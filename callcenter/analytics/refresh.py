"""Keeping the rollups in step with the core tables.

A unit of work recomputes one local day of contacts, of transitions or of survey answers, or
a batch of tickets, whole, from the core tables, in its own transaction. The refresher finds
what changed since its last run (new interactions and survey answers by id, tickets by
``updated_at``) and redoes only that; the first run builds everything. Rows written by
transactions that commit late are caught by looking back over the last ids: the state keeps
the ids of that look-back not yet committed at the last run (its gaps), so a run, also the
first after a restart, examines only those and the new ids. Merges and erasures change a
customer's history in place; they leave a row in ``analytics_dirty`` and the next run
recomputes that customer's days and tickets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.analytics.buckets import bucket
from callcenter.analytics.models import (
    NO_AGENT,
    ContactRollup,
    DirtyCustomer,
    NpsRollup,
    RefreshState,
    TicketDayRollup,
    TicketFact,
    TransitionRollup,
)
from callcenter.automation.models import SurveyAnswer
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Direction,
    Interaction,
    Queue,
    Ticket,
    utcnow,
)

log = logging.getLogger(__name__)

REPEAT_WINDOW = timedelta(days=7)
TRANSITION_WINDOW = timedelta(hours=24)
DEFAULT_SL_SECONDS = 20
"""The service-level threshold of a queue that has no row in ``queues`` (the model's default)."""
TICKET_BATCH = 5000
LOOKBACK_IDS = 1000
TICKET_OVERLAP = timedelta(minutes=5)
_LOCK = 0x616E616C  # "anal": one refresher writes at a time (PostgreSQL advisory lock)


@dataclass(frozen=True)
class Calendar:
    """Local days of the contact centre's time zone."""

    zone: ZoneInfo

    def day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def hour(self, moment: datetime) -> int:
        return moment.astimezone(self.zone).hour

    def start(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def bounds(self, first: date, last: date) -> tuple[datetime, datetime]:
        """UTC start of ``first`` and end of ``last`` (exclusive)."""
        return self.start(first), self.start(last + timedelta(days=1))


async def _lock(session: AsyncSession) -> None:
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})


def _first(values: list[str] | None) -> str:
    return str(values[0])[:64] if values else ""


async def _thresholds(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Queue.name, Queue.service_level_seconds))
    return {name: seconds for name, seconds in rows}


def _fingerprint(thresholds: dict[str, int]) -> int:
    """The queues' service-level thresholds in one number: a change rebuilds the contacts."""
    digest = hashlib.sha256(json.dumps(sorted(thresholds.items())).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def rebuild_contacts_day(session: AsyncSession, calendar: Calendar, day: date) -> None:
    """Recompute the inbound contacts of one local day; the caller commits."""
    start, end = calendar.bounds(day, day)
    thresholds = await _thresholds(session)
    rows = await session.execute(
        select(
            Interaction.occurred_at,
            Interaction.channel,
            Interaction.intents,
            func.coalesce(Call.agent_id, Interaction.agent_id, Ticket.assignee_id),
            Call.queue,
            Call.outcome,
            Call.wait_seconds,
        )
        .outerjoin(Call, Call.interaction_id == Interaction.id)
        .outerjoin(Ticket, Ticket.id == Interaction.ticket_id)
        .where(
            Interaction.occurred_at >= start,
            Interaction.occurred_at < end,
            Interaction.direction == Direction.INBOUND,
            Interaction.channel != Channel.NOTE,
        )
    )
    sums: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for at, channel, intents, agent, queue, outcome, wait in rows:
        key = (calendar.hour(at), channel.value, queue or "", agent or NO_AGENT, _first(intents))
        counts = sums[key]
        counts["contacts"] += 1
        if outcome is None:
            continue
        counts["calls"] += 1
        if outcome == CallOutcome.ANSWERED:
            counts["answered"] += 1
            if wait <= thresholds.get(queue or "", DEFAULT_SL_SECONDS):
                counts["answered_in_sl"] += 1
        elif outcome == CallOutcome.ABANDONED:
            counts["abandoned"] += 1
    await session.execute(delete(ContactRollup).where(ContactRollup.day == day))
    columns = ("contacts", "calls", "answered", "answered_in_sl", "abandoned")
    values = [
        dict(
            day=day,
            hour=hour,
            channel=channel,
            queue=queue,
            agent_id=agent,
            intent=intent,
            **{c: counts[c] for c in columns},
        )
        for (hour, channel, queue, agent, intent), counts in sums.items()
    ]
    if values:
        await session.execute(insert(ContactRollup.__table__), values)


async def rebuild_transitions_day(session: AsyncSession, calendar: Calendar, day: date) -> None:
    """Recompute where the customers who contacted us on ``day`` turned next within 24 h.

    A contact is unanswered when it is a call that was not answered, or a message the customer
    followed up before any outbound interaction reached them.
    """
    start, end = calendar.bounds(day, day)
    rows = await session.execute(
        select(
            Interaction.customer_id,
            Interaction.occurred_at,
            Interaction.channel,
            Interaction.direction,
            Call.outcome,
        )
        .outerjoin(Call, Call.interaction_id == Interaction.id)
        .where(
            Interaction.occurred_at >= start,
            Interaction.occurred_at < end + TRANSITION_WINDOW,
            Interaction.channel != Channel.NOTE,
            Interaction.direction != Direction.INTERNAL,
        )
        .order_by(Interaction.customer_id, Interaction.occurred_at, Interaction.id)
    )
    moves: Counter[tuple[str, str, bool]] = Counter()
    pending: tuple[datetime, str, bool] | None = None  # the customer's last inbound contact
    customer = None
    for customer_id, at, channel, direction, outcome in rows:
        if customer_id != customer:
            customer, pending = customer_id, None
        if direction == Direction.OUTBOUND:
            if pending is not None and outcome in (None, CallOutcome.ANSWERED):
                pending = (pending[0], pending[1], False)
            continue
        if pending is not None and at - pending[0] <= TRANSITION_WINDOW and pending[0] < end:
            moves[(pending[1], channel.value, pending[2])] += 1
        unanswered = outcome != CallOutcome.ANSWERED if outcome is not None else True
        pending = (at, channel.value, unanswered)
    await session.execute(delete(TransitionRollup).where(TransitionRollup.day == day))
    values = [
        dict(day=day, from_channel=a, to_channel=b, unanswered=u, moves=n)
        for (a, b, u), n in moves.items()
    ]
    if values:
        await session.execute(insert(TransitionRollup.__table__), values)


def _seconds(later: datetime | None, earlier: datetime) -> int | None:
    return None if later is None else max(0, int((later - earlier).total_seconds()))


def _same_issue(ticket: Ticket, intents: list[str], orders: list[str]) -> bool:
    return bool(set(ticket.intents or ()) & set(intents or ())) or bool(
        set(ticket.order_numbers or ()) & set(orders or ())
    )


async def rebuild_tickets(
    session: AsyncSession, calendar: Calendar, ids: Iterable[int]
) -> set[date]:
    """Recompute the facts of these tickets (a missing ticket loses its row); caller commits.
    Answers the days whose ticket rollup is now out of date.

    A solved ticket is a repeat when the same customer contacts us again about the same order
    number or intent after it was solved and no later than 7 days after.
    """
    wanted = sorted(set(ids))
    days: set[date] = set()
    for n in range(0, len(wanted), TICKET_BATCH):
        batch = wanted[n : n + TICKET_BATCH]
        tickets = list(await session.scalars(select(Ticket).where(Ticket.id.in_(batch))))
        later = await _contacts_after_solving(session, [t for t in tickets if t.solved_at])
        old = select(TicketFact.day, TicketFact.solved_day).where(TicketFact.ticket_id.in_(batch))
        for created, solved_day in await session.execute(old):
            days |= {created, solved_day} - {None}
        await session.execute(delete(TicketFact).where(TicketFact.ticket_id.in_(batch)))
        values = []
        for ticket in tickets:
            solved = ticket.solved_at
            repeat = solved is not None and any(
                solved < at <= solved + REPEAT_WINDOW and _same_issue(ticket, intents, orders)
                for at, intents, orders in later.get(ticket.customer_id, ())
            )
            values.append(
                dict(
                    ticket_id=ticket.id,
                    customer_id=ticket.customer_id,
                    day=calendar.day(ticket.created_at),
                    channel=ticket.channel.value,
                    agent_id=ticket.assignee_id or NO_AGENT,
                    intent=_first(ticket.intents),
                    frt_seconds=_seconds(ticket.first_response_at, ticket.created_at),
                    resolution_seconds=_seconds(solved, ticket.created_at),
                    solved_day=calendar.day(solved) if solved else None,
                    repeat=repeat,
                )
            )
        if values:
            await session.execute(insert(TicketFact.__table__), values)
            days |= {v["day"] for v in values} | {v["solved_day"] for v in values} - {None}
        session.expunge_all()
    return days


async def rebuild_ticket_day(session: AsyncSession, calendar: Calendar, day: date) -> None:
    """Recompute the ticket rollup of one day from the ticket facts; the caller commits."""
    sums: dict[tuple[str, str, int, int], Counter[str]] = defaultdict(Counter)
    opened = select(
        TicketFact.channel,
        TicketFact.agent_id,
        TicketFact.frt_seconds,
        TicketFact.resolution_seconds,
    ).where(TicketFact.day == day)
    for channel, agent, frt, resolution in await session.execute(opened):
        sums[("created", channel, agent, 0)]["tickets"] += 1
        for metric, seconds in (("frt", frt), ("resolution", resolution)):
            if seconds is not None:
                counts = sums[(metric, channel, agent, bucket(seconds))]
                counts["tickets"] += 1
                counts["seconds"] += seconds
    solved = select(TicketFact.channel, TicketFact.agent_id, TicketFact.repeat).where(
        TicketFact.solved_day == day
    )
    for channel, agent, repeat in await session.execute(solved):
        counts = sums[("solved", channel, agent, 0)]
        counts["tickets"] += 1
        counts["repeats"] += int(repeat)
    await session.execute(delete(TicketDayRollup).where(TicketDayRollup.day == day))
    values = [
        dict(
            day=day,
            metric=metric,
            channel=channel,
            agent_id=agent,
            bucket=number,
            tickets=counts["tickets"],
            seconds=counts["seconds"],
            repeats=counts["repeats"],
        )
        for (metric, channel, agent, number), counts in sums.items()
    ]
    if values:
        await session.execute(insert(TicketDayRollup.__table__), values)


async def rebuild_nps_day(session: AsyncSession, calendar: Calendar, day: date) -> None:
    """Recompute the survey answers given on one local day; the caller commits."""
    start, end = calendar.bounds(day, day)
    agent = func.coalesce(Ticket.assignee_id, NO_AGENT)
    rows = await session.execute(
        select(
            Ticket.channel,
            agent,
            func.count(),
            func.count().filter(SurveyAnswer.score >= 9),
            func.count().filter(SurveyAnswer.score <= 6),
        )
        .join(Ticket, Ticket.id == SurveyAnswer.ticket_id)
        .where(SurveyAnswer.answered_at >= start, SurveyAnswer.answered_at < end)
        .group_by(Ticket.channel, agent)
    )
    await session.execute(delete(NpsRollup).where(NpsRollup.day == day))
    values = [
        dict(day=day, channel=c.value, agent_id=a, answers=n, promoters=p, detractors=d)
        for c, a, n, p, d in rows
    ]
    if values:
        await session.execute(insert(NpsRollup.__table__), values)


async def _contacts_after_solving(
    session: AsyncSession, solved: list[Ticket]
) -> dict[int, list[tuple[datetime, list[str], list[str]]]]:
    """Inbound contacts of these tickets' customers in their tickets' 7-day windows."""
    found: dict[int, list[tuple[datetime, list[str], list[str]]]] = defaultdict(list)
    if not solved:
        return found
    windows: dict[int, tuple[datetime, datetime]] = {}
    for t in solved:
        assert t.solved_at is not None
        lo, hi = windows.get(t.customer_id, (t.solved_at, t.solved_at))
        windows[t.customer_id] = (min(lo, t.solved_at), max(hi, t.solved_at))
    lo = min(w[0] for w in windows.values())
    hi = max(w[1] for w in windows.values()) + REPEAT_WINDOW
    rows = await session.execute(
        select(
            Interaction.customer_id,
            Interaction.occurred_at,
            Interaction.intents,
            Interaction.order_numbers,
        ).where(
            Interaction.customer_id.in_(list(windows)),
            Interaction.direction == Direction.INBOUND,
            Interaction.channel != Channel.NOTE,
            Interaction.occurred_at > lo,
            Interaction.occurred_at <= hi,
        )
    )
    for customer_id, at, intents, orders in rows:
        first, last = windows[customer_id]
        if first < at <= last + REPEAT_WINDOW:
            found[customer_id].append((at, intents or [], orders or []))
    return found


class Refresher:
    """The supervised component that keeps the rollups current (``run``), or one pass of it."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        timezone: str,
        *,
        interval: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self.calendar = Calendar(ZoneInfo(timezone))
        self._zone = timezone
        self._interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    async def _state(self) -> dict[str, RefreshState]:
        async with self._sessions() as db:
            return {s.name: s for s in await db.scalars(select(RefreshState))}

    async def refresh(self) -> None:
        """Bring every rollup up to date with what is committed now."""
        state = await self._state()
        if "interactions" not in state or state["interactions"].timezone != self._zone:
            await self.rebuild()
            return
        started = utcnow()
        watermark, gaps = state["interactions"].value, set(state["interactions"].gaps)
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(
                        Interaction.id,
                        Interaction.occurred_at,
                        Interaction.customer_id,
                        Interaction.ticket_id,
                        Interaction.direction,
                    ).where(Interaction.id > watermark - LOOKBACK_IDS)
                )
            ).all()
            fresh = [r for r in rows if r.id > watermark or r.id in gaps]
            since = (state["tickets"].at or started) - TICKET_OVERLAP
            changed = set(await db.scalars(select(Ticket.id).where(Ticket.updated_at >= since)))
            changed |= {r.ticket_id for r in fresh if r.ticket_id}
            changed |= await self._tickets_before(db, fresh)
            queues = _fingerprint(await _thresholds(db))
            dirty = (await db.execute(select(DirtyCustomer.id, DirtyCustomer.customer_id))).all()
            customer_days, customer_tickets = await self._customers(db, {c for _, c in dirty})
            changed |= customer_tickets
            marked = state.get("surveys")
            surveyed, answer_gaps = (marked.value, set(marked.gaps)) if marked else (0, set())
            answers = (
                await db.execute(
                    select(SurveyAnswer.id, SurveyAnswer.answered_at).where(
                        SurveyAnswer.id > surveyed - LOOKBACK_IDS
                    )
                )
            ).all()
            nps_days = {
                self.calendar.day(a.answered_at)
                for a in answers
                if a.id > surveyed or a.id in answer_gaps
            }
            nps_days |= await self._answer_days(db, changed)  # a channel or agent changed
        days = {self.calendar.day(r.occurred_at) for r in fresh} | customer_days
        contact_days = set(days)
        if "queues" not in state or state["queues"].value != queues:
            contact_days |= await self._every_day()  # a service-level threshold changed
        await self._recompute(contact_days, days, changed, nps_days)
        top = max([watermark, *(r.id for r in rows)])
        answers_top = max([surveyed, *(a.id for a in answers)])
        marks = {
            "interactions": (top, _gaps(top, {r.id for r in rows})),
            "surveys": (answers_top, _gaps(answers_top, {a.id for a in answers})),
        }
        await self._save(marks, started, queues)
        if dirty:
            async with self._sessions() as db, db.begin():
                await db.execute(
                    delete(DirtyCustomer).where(DirtyCustomer.id.in_([n for n, _ in dirty]))
                )

    async def _recompute(
        self,
        contact_days: set[date],
        transition_days: set[date],
        tickets: set[int],
        nps_days: set[date],
    ) -> None:
        for day in sorted(nps_days):
            await self._unit(rebuild_nps_day, day)
        for day in sorted(contact_days):
            await self._unit(rebuild_contacts_day, day)
        for day in sorted(transition_days | {d - timedelta(days=1) for d in transition_days}):
            await self._unit(rebuild_transitions_day, day)
        for day in sorted(await self._unit(rebuild_tickets, tickets)):
            await self._unit(rebuild_ticket_day, day)

    async def _answer_days(self, db: AsyncSession, tickets: set[int]) -> set[date]:
        """The days these tickets were rated."""
        days: set[date] = set()
        wanted = sorted(tickets)
        for n in range(0, len(wanted), TICKET_BATCH):
            answered = select(SurveyAnswer.answered_at).where(
                SurveyAnswer.ticket_id.in_(wanted[n : n + TICKET_BATCH])
            )
            days |= {self.calendar.day(at) for at in await db.scalars(answered)}
        return days

    async def _customers(self, db: AsyncSession, customers: set[int]) -> tuple[set[date], set[int]]:
        """The days these customers contacted us and their tickets."""
        days: set[date] = set()
        tickets: set[int] = set()
        wanted = sorted(customers)
        for n in range(0, len(wanted), TICKET_BATCH):
            batch = wanted[n : n + TICKET_BATCH]
            moments = select(Interaction.occurred_at).where(Interaction.customer_id.in_(batch))
            days |= {self.calendar.day(at) for at in await db.scalars(moments)}
            tickets |= set(await db.scalars(select(Ticket.id).where(Ticket.customer_id.in_(batch))))
        return days, tickets

    async def rebuild_since(self, first: date) -> None:
        """Recompute the rollups of ``first`` and every later day (``callcenter analytics
        rebuild --since``); the watermarks stay where they are."""
        if "interactions" not in await self._state():
            await self.rebuild()
            return
        days = {d for d in await self._every_day() if d >= first}
        start = self.calendar.start(first)
        async with self._sessions() as db:
            tickets = set(
                await db.scalars(
                    select(Ticket.id).where(
                        or_(Ticket.created_at >= start, Ticket.solved_at >= start - REPEAT_WINDOW)
                    )
                )
            )
        rated = {d for d in await self._every_day(SurveyAnswer.answered_at) if d >= first}
        await self._recompute(days, days, tickets, rated)

    async def _tickets_before(self, db: AsyncSession, fresh: list[Any]) -> set[int]:
        """Solved tickets whose repeat window a new inbound contact falls into."""
        inbound = [r for r in fresh if r.direction == Direction.INBOUND]
        if not inbound:
            return set()
        earliest = min(r.occurred_at for r in inbound) - REPEAT_WINDOW
        customers = sorted({r.customer_id for r in inbound})
        found: set[int] = set()
        for n in range(0, len(customers), TICKET_BATCH):
            found |= set(
                await db.scalars(
                    select(Ticket.id).where(
                        Ticket.customer_id.in_(customers[n : n + TICKET_BATCH]),
                        Ticket.solved_at >= earliest,
                    )
                )
            )
        return found

    async def _unit(self, work: Any, arg: Any) -> Any:
        async with self._sessions() as db, db.begin():
            await _lock(db)
            return await work(db, self.calendar, arg)

    async def _every_day(self, moment: Any = Interaction.occurred_at) -> set[date]:
        """Every day from the first ``moment`` to the last (contacts by default)."""
        async with self._sessions() as db:
            first, last = (await db.execute(select(func.min(moment), func.max(moment)))).one()
        if first is None:
            return set()
        start = self.calendar.day(first)
        return {
            start + timedelta(days=n) for n in range((self.calendar.day(last) - start).days + 1)
        }

    async def _save(
        self, marks: dict[str, tuple[int, list[int]]], tickets_at: datetime, queues: int
    ) -> None:
        """``marks``: the watermark of interactions and of survey answers, with their gaps."""
        async with self._sessions() as db, db.begin():
            await _lock(db)
            for name, (value, missing), at in (
                ("interactions", marks["interactions"], utcnow()),
                ("surveys", marks["surveys"], None),
                ("tickets", (0, []), tickets_at),
                ("queues", (queues, []), None),
            ):
                row = await db.get(RefreshState, name)
                if row is None:
                    row = RefreshState(name=name, timezone=self._zone)
                    db.add(row)
                row.value, row.at, row.timezone, row.gaps = value, at, self._zone, missing

    async def _vacuum(self) -> None:
        """After a build, PostgreSQL can read medians from the indexes alone (visibility map)."""
        async with self._sessions() as db:
            if db.bind.dialect.name != "postgresql":
                return
            conn = await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            for table in (ContactRollup, TransitionRollup, TicketFact, TicketDayRollup, NpsRollup):
                await conn.execute(text(f"VACUUM ANALYZE {table.__tablename__}"))

    async def rebuild(self) -> None:
        """Build every rollup from scratch (the first run, and after a change of time zone)."""
        started = utcnow()
        async with self._sessions() as db:
            top = await db.scalar(select(func.coalesce(func.max(Interaction.id), 0)))
            # committed before the build began, so the build counts them
            seen = set(
                await db.scalars(
                    select(Interaction.id).where(
                        Interaction.id > top - LOOKBACK_IDS, Interaction.id <= top
                    )
                )
            )
            answers_top = await db.scalar(select(func.coalesce(func.max(SurveyAnswer.id), 0)))
            answers_seen = set(
                await db.scalars(
                    select(SurveyAnswer.id).where(
                        SurveyAnswer.id > answers_top - LOOKBACK_IDS, SurveyAnswer.id <= answers_top
                    )
                )
            )
            dirty = await db.scalar(select(func.max(DirtyCustomer.id)))
            last_ticket = await db.scalar(select(func.coalesce(func.max(Ticket.id), 0)))
            queues = _fingerprint(await _thresholds(db))
        async with self._sessions() as db, db.begin():
            await _lock(db)
            for table in (ContactRollup, TransitionRollup, TicketFact, TicketDayRollup, NpsRollup):
                await db.execute(delete(table))
            if dirty is not None:
                await db.execute(delete(DirtyCustomer).where(DirtyCustomer.id <= dirty))
        for day in sorted(await self._every_day()):
            await self._unit(rebuild_contacts_day, day)
            await self._unit(rebuild_transitions_day, day)
        days: set[date] = set()
        for n in range(1, last_ticket + 1, TICKET_BATCH):
            batch = range(n, min(n + TICKET_BATCH, last_ticket + 1))
            days |= await self._unit(rebuild_tickets, batch)
        for day in sorted(days):
            await self._unit(rebuild_ticket_day, day)
        for day in sorted(await self._every_day(SurveyAnswer.answered_at)):
            await self._unit(rebuild_nps_day, day)
        marks = {
            "interactions": (top, _gaps(top, seen)),
            "surveys": (answers_top, _gaps(answers_top, answers_seen)),
        }
        await self._save(marks, started, queues)
        await self._vacuum()
        log.info("analytics rollups rebuilt in %.0f s", (utcnow() - started).total_seconds())


def _gaps(top: int, present: set[int]) -> list[int]:
    """The ids of the look-back below ``top`` that were not (yet) committed."""
    return [n for n in range(max(top - LOOKBACK_IDS, 0) + 1, top + 1) if n not in present]


async def refreshed_at(session: AsyncSession) -> datetime | None:
    """When the rollups were last brought up to date."""
    row = await session.get(RefreshState, "interactions")
    return row.at if row else None

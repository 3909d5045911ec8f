"""The figures of each analytics page, read from the rollups.

Every page answers a list of ``Table``; the template, the charts and the CSV export all read
the same tables, so what is downloaded is what is shown.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.analytics.buckets import span
from callcenter.analytics.models import (
    ContactRollup,
    NpsRollup,
    TicketDayRollup,
    TicketFact,
    TransitionRollup,
)
from callcenter.models import Queue

DEFAULT_DAYS = 30
REPEAT_GOAL = 5.0
REPEAT_ALARM = 15.0
CHANNELS = ("call", "telegram", "email")


@dataclass(frozen=True)
class Filters:
    first: date
    last: date
    channel: str | None = None
    queue: str | None = None
    agent_id: int | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str], today: date) -> Filters:
        """Filters from a query string; anything malformed falls back to its default."""

        def day(name: str, default: date) -> date:
            try:
                return date.fromisoformat(query.get(name, ""))
            except ValueError:
                return default

        last = day("to", today)
        first = day("from", last - timedelta(days=DEFAULT_DAYS - 1))
        first, last = min(first, last), max(first, last)
        channel = query.get("channel") or None
        agent = query.get("agent", "")
        return cls(
            first=first,
            last=last,
            channel=channel if channel in CHANNELS else None,
            queue=(query.get("queue") or "")[:64] or None,
            agent_id=int(agent) if agent.isdigit() else None,
        )

    def query(self) -> dict[str, str]:
        values = {"from": self.first.isoformat(), "to": self.last.isoformat()}
        if self.channel:
            values["channel"] = self.channel
        if self.queue:
            values["queue"] = self.queue
        if self.agent_id is not None:
            values["agent"] = str(self.agent_id)
        return values


@dataclass
class Table:
    """A titled table: ``columns`` are catalog keys, ``rows`` the raw values."""

    name: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    """How to show each column: ``text``, ``int``, ``seconds`` or ``percent``."""


def rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _avg(total: int | None, count: int) -> float | None:
    return round(float(total) / count, 1) if count and total is not None else None


def _contacts_where(f: Filters) -> list[ColumnElement[bool]]:
    where = [ContactRollup.day >= f.first, ContactRollup.day <= f.last]
    if f.channel:
        where.append(ContactRollup.channel == f.channel)
    if f.queue:
        where.append(ContactRollup.queue == f.queue)
    if f.agent_id is not None:
        where.append(ContactRollup.agent_id == f.agent_id)
    return where


def _tickets_where(f: Filters) -> list[ColumnElement[bool]]:
    where = [TicketDayRollup.day >= f.first, TicketDayRollup.day <= f.last]
    if f.channel:
        where.append(TicketDayRollup.channel == f.channel)
    if f.agent_id is not None:
        where.append(TicketDayRollup.agent_id == f.agent_id)
    return where


def _middle(counts: dict[int, int]) -> list[tuple[int, int]]:
    """(bucket, offset in it) of the middle value, or of the two middle values."""
    total = sum(counts.values())
    found = []
    for rank in sorted({(total - 1) // 2, total // 2}) if total else ():
        before = 0
        for number in sorted(counts):
            if rank < before + counts[number]:
                found.append((number, rank - before))
                break
            before += counts[number]
    return found


async def medians(
    session: AsyncSession, f: Filters, wanted: dict[tuple[str, str], dict[int, int]]
) -> dict[tuple[str, str], float]:
    """Exact medians of durations per (metric, channel), from the rollup's bucket counts:
    only the rows of the bucket holding each middle value are read, all in one query."""
    columns = {"frt": TicketFact.frt_seconds, "resolution": TicketFact.resolution_seconds}
    parts = []
    for (metric, channel), counts in wanted.items():
        middle = _middle(counts)
        for number in dict.fromkeys(n for n, _ in middle):
            offsets = [o for n, o in middle if n == number]
            column = columns[metric]
            lo, hi = span(number)
            where = [
                TicketFact.channel == channel,
                column >= lo,
                column < hi,
                TicketFact.day >= f.first,
                TicketFact.day <= f.last,
            ]
            if f.agent_id is not None:
                where.append(TicketFact.agent_id == f.agent_id)
            parts.append(
                select(column.label("value"), literal(f"{metric}:{channel}").label("key"))
                .where(*where)
                .order_by(column)
                .offset(min(offsets))
                .limit(max(offsets) - min(offsets) + 1)
                .subquery()
                .select()
            )
    values: dict[str, list[int]] = defaultdict(list)
    if parts:
        for value, key in await session.execute(union_all(*parts)):
            values[key].append(value)
    return {
        (metric, channel): sum(values[f"{metric}:{channel}"]) / len(values[f"{metric}:{channel}"])
        for metric, channel in wanted
        if values[f"{metric}:{channel}"]
    }


async def overview(session: AsyncSession, f: Filters) -> list[Table]:
    """First response, resolution, volume per channel and intent, SL and abandon per hour."""
    rows = await session.execute(
        select(
            TicketDayRollup.metric,
            TicketDayRollup.channel,
            TicketDayRollup.bucket,
            func.sum(TicketDayRollup.tickets),
            func.sum(TicketDayRollup.seconds),
        )
        .where(*_tickets_where(f), TicketDayRollup.metric.in_(("created", "frt", "resolution")))
        .group_by(TicketDayRollup.metric, TicketDayRollup.channel, TicketDayRollup.bucket)
    )
    created: Counter[str] = Counter()
    seconds: Counter[tuple[str, str]] = Counter()
    buckets: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for metric, channel, number, tickets, total in rows:
        if metric == "created":
            created[channel] += tickets
        else:
            buckets[(metric, channel)][number] = tickets
            seconds[(metric, channel)] += total
    frt = Table(
        "frt",
        [
            "analytics.channel",
            "analytics.tickets",
            "analytics.responded",
            "analytics.frt_avg",
            "analytics.frt_median",
        ],
        kinds=["channel", "int", "int", "seconds", "seconds"],
    )
    resolution = Table(
        "resolution",
        [
            "analytics.channel",
            "analytics.tickets",
            "analytics.solved",
            "analytics.resolution_avg",
            "analytics.resolution_median",
        ],
        kinds=["channel", "int", "int", "seconds", "seconds"],
    )
    middle = await medians(session, f, buckets)
    for channel in sorted(created):
        for table, metric in ((frt, "frt"), (resolution, "resolution")):
            done = sum(buckets[(metric, channel)].values())
            table.rows.append(
                [
                    channel,
                    created[channel],
                    done,
                    _avg(seconds[(metric, channel)], done),
                    middle.get((metric, channel)),
                ]
            )

    return [frt, resolution, *await _contacts(session, f)]


async def _contacts(session: AsyncSession, f: Filters) -> list[Table]:
    """Volume per channel and per intent; service level and abandon rate per queue and hour
    of the day. One pass over the rollup, summed here."""
    counted = {
        name: flag
        for name, flag in await session.execute(
            select(Queue.name, Queue.abandoned_in_service_level)
        )
    }
    columns = ("contacts", "calls", "answered", "answered_in_sl", "abandoned")
    keys = (ContactRollup.channel, ContactRollup.intent, ContactRollup.queue, ContactRollup.hour)
    rows = await session.execute(
        select(*keys, *(func.sum(getattr(ContactRollup, c)) for c in columns))
        .where(*_contacts_where(f))
        .group_by(*keys)
    )
    channels: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    service: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for channel, intent, queue, hour, *sums in rows:
        figures = dict(zip(columns, sums, strict=True))
        channels[channel] += figures["contacts"]
        intents[intent] += figures["contacts"]
        if queue:
            service[(queue, hour)].update(figures)
    by_channel = Table(
        "volume_channel", ["analytics.channel", "analytics.contacts"], kinds=["channel", "int"]
    )
    by_channel.rows = [[c, n] for c, n in sorted(channels.items())]
    by_intent = Table(
        "volume_intent", ["analytics.intent", "analytics.contacts"], kinds=["intent", "int"]
    )
    by_intent.rows = [[i, n] for i, n in sorted(intents.items(), key=lambda x: (-x[1], x[0]))]
    table = Table(
        "service",
        [
            "analytics.queue",
            "analytics.hour",
            "analytics.calls",
            "analytics.answered",
            "analytics.abandoned",
            "analytics.sl",
            "analytics.abandon_rate",
        ],
        kinds=["text", "hour", "int", "int", "int", "percent", "percent"],
    )
    for (queue, hour), n in sorted(service.items()):
        base = n["answered"] + (n["abandoned"] if counted.get(queue) else 0)
        table.rows.append(
            [
                queue,
                hour,
                n["calls"],
                n["answered"],
                n["abandoned"],
                rate(n["answered_in_sl"], base),
                rate(n["abandoned"], n["calls"]),
            ]
        )
    return [by_channel, by_intent, table]


async def repeat_contacts(session: AsyncSession, f: Filters) -> list[Table]:
    """Share of solved tickets that the customer came back about within 7 days."""
    where = [*_tickets_where(f), TicketDayRollup.metric == "solved"]
    solved, repeats = func.sum(TicketDayRollup.tickets), func.sum(TicketDayRollup.repeats)
    by_day = Table(
        "repeat_day",
        ["analytics.day", "analytics.solved", "analytics.repeats", "analytics.repeat_rate"],
        kinds=["text", "int", "int", "percent"],
    )
    for day, count, n in await session.execute(
        select(TicketDayRollup.day, solved, repeats)
        .where(*where)
        .group_by(TicketDayRollup.day)
        .order_by(TicketDayRollup.day)
    ):
        by_day.rows.append([day.isoformat(), count, n, rate(n, count)])
    by_channel = Table(
        "repeat_channel",
        ["analytics.channel", "analytics.solved", "analytics.repeats", "analytics.repeat_rate"],
        kinds=["channel", "int", "int", "percent"],
    )
    for channel, count, n in await session.execute(
        select(TicketDayRollup.channel, solved, repeats)
        .where(*where)
        .group_by(TicketDayRollup.channel)
        .order_by(TicketDayRollup.channel)
    ):
        by_channel.rows.append([channel, count, n, rate(n, count)])
    count = sum(r[1] for r in by_channel.rows)
    n = sum(r[2] for r in by_channel.rows)
    by_channel.rows.append(["", count, n, rate(n, count)])
    return [by_channel, by_day]


def nps_score(promoters: int, detractors: int, answers: int) -> float | None:
    return round(100.0 * (promoters - detractors) / answers, 1) if answers else None


async def nps(session: AsyncSession, f: Filters) -> list[Table]:
    """NPS (promoters 9-10 minus detractors 0-6, in % of answers) per channel and per agent."""
    where = [NpsRollup.day >= f.first, NpsRollup.day <= f.last]
    if f.channel:
        where.append(NpsRollup.channel == f.channel)
    if f.agent_id is not None:
        where.append(NpsRollup.agent_id == f.agent_id)
    tables = []
    for name, key, kind in (
        ("nps_channel", NpsRollup.channel, "channel"),
        ("nps_agent", NpsRollup.agent_id, "agent"),
    ):
        table = Table(
            name,
            [
                f"analytics.{kind}",
                "analytics.answers",
                "analytics.promoters",
                "analytics.passives",
                "analytics.detractors",
                "analytics.nps",
            ],
            kinds=[kind, "int", "int", "int", "int", "number"],
        )
        for group, answers, p, d in await session.execute(
            select(
                key,
                func.sum(NpsRollup.answers),
                func.sum(NpsRollup.promoters),
                func.sum(NpsRollup.detractors),
            )
            .where(*where)
            .group_by(key)
            .order_by(key)
        ):
            table.rows.append([group, answers, p, answers - p - d, d, nps_score(p, d, answers)])
        tables.append(table)
    return tables


async def transitions(session: AsyncSession, f: Filters) -> list[Table]:
    """Moves from one channel to the customer's next contact within 24 h."""
    where = [TransitionRollup.day >= f.first, TransitionRollup.day <= f.last]
    if f.channel:
        moved = (TransitionRollup.from_channel, TransitionRollup.to_channel)
        where.append(or_(*(c == f.channel for c in moved)))
    table = Table(
        "transitions",
        [
            "analytics.from_channel",
            "analytics.to_channel",
            "analytics.moves",
            "analytics.after_no_answer",
        ],
        kinds=["channel", "channel", "int", "int"],
    )
    no_answer = func.sum(TransitionRollup.moves).filter(TransitionRollup.unanswered)
    for a, b, moves, lost in await session.execute(
        select(
            TransitionRollup.from_channel,
            TransitionRollup.to_channel,
            func.sum(TransitionRollup.moves),
            no_answer,
        )
        .where(*where)
        .group_by(TransitionRollup.from_channel, TransitionRollup.to_channel)
        .order_by(TransitionRollup.from_channel, TransitionRollup.to_channel)
    ):
        table.rows.append([a, b, moves, lost or 0])
    return [table]

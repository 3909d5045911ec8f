"""The wallboard's omnichannel tiles, read from the database: Telegram and email conversations
waiting for a first answer, tickets past the answer promise, callbacks waiting, and the
repeat-contact rate of the last seven days."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.models import Channel, Ticket, TicketStatus

WRITTEN = (Channel.TELEGRAM, Channel.EMAIL)
UNANSWERED = (TicketStatus.NEW, TicketStatus.OPEN)
SOLVED = (TicketStatus.SOLVED, TicketStatus.CLOSED)
REPEAT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Waiting:
    count: int = 0
    oldest: datetime | None = None
    """When the longest-waiting one started waiting."""


@dataclass(frozen=True)
class RepeatRate:
    repeated: int
    solved: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.repeated / self.solved if self.solved else None


@dataclass(frozen=True)
class Backlog:
    telegram: Waiting
    email: Waiting
    breaching: Waiting
    """Written conversations still without a first answer after the promised time."""
    callbacks: Waiting
    """Callbacks due and not taken by anyone yet (oldest: the earliest due time)."""
    repeat: RepeatRate


async def read_backlog(
    session: AsyncSession, now: datetime, promise: timedelta, repeat: RepeatRate | None = None
) -> Backlog:
    """The tiles at `now`; `repeat`: a recent reading of the repeat-contact rate to reuse."""
    unanswered = (
        Ticket.status.in_(UNANSWERED),
        Ticket.first_response_at.is_(None),
        Ticket.channel.in_(WRITTEN),
    )
    rows = await session.execute(
        select(Ticket.channel, func.count(), func.min(Ticket.created_at))
        .where(*unanswered)
        .group_by(Ticket.channel)
    )
    waiting = {channel: Waiting(count, oldest) for channel, count, oldest in rows}
    late = (
        await session.execute(
            select(func.count(), func.min(Ticket.created_at)).where(
                *unanswered, Ticket.created_at <= now - promise
            )
        )
    ).one()
    due = (
        await session.execute(
            select(func.count(), func.min(CallbackRequest.due_at)).where(
                CallbackRequest.status == CallbackStatus.REQUESTED,
                CallbackRequest.due_at <= now,
            )
        )
    ).one()
    return Backlog(
        telegram=waiting.get(Channel.TELEGRAM, Waiting()),
        email=waiting.get(Channel.EMAIL, Waiting()),
        breaching=Waiting(*late),
        callbacks=Waiting(*due),
        repeat=repeat if repeat is not None else await repeat_rate(session, now),
    )


async def repeat_rate(session: AsyncSession, now: datetime) -> RepeatRate:
    """Of the tickets solved in the last seven days, those the customer came back about: a
    later ticket of theirs within seven days sharing an order number or an intent. A ticket
    reopened (and touched) in these seven days counts as solved and repeated."""
    since = now - REPEAT_WINDOW
    solved = list(
        await session.execute(
            select(
                Ticket.id,
                Ticket.customer_id,
                Ticket.solved_at,
                Ticket.intents,
                Ticket.order_numbers,
            ).where(Ticket.status.in_(SOLVED), Ticket.solved_at >= since)
        )
    )
    customers = select(Ticket.customer_id).where(
        Ticket.status.in_(SOLVED), Ticket.solved_at >= since
    )
    later: dict[int, list[tuple[int, datetime, set[str]]]] = defaultdict(list)
    for ticket_id, customer_id, created_at, intents, orders in await session.execute(
        select(
            Ticket.id, Ticket.customer_id, Ticket.created_at, Ticket.intents, Ticket.order_numbers
        ).where(Ticket.created_at >= since, Ticket.customer_id.in_(customers))
    ):
        later[customer_id].append((ticket_id, created_at, _issue(intents, orders)))

    def came_back(ticket_id: int, customer_id: int, solved_at: datetime, issue: set[str]) -> bool:
        return any(
            other != ticket_id
            and solved_at < created_at <= solved_at + REPEAT_WINDOW
            and bool(issue & theirs)
            for other, created_at, theirs in later[customer_id]
        )

    repeated = sum(
        came_back(ticket_id, customer_id, solved_at, _issue(intents, orders))
        for ticket_id, customer_id, solved_at, intents, orders in solved
    )
    reopened = await session.scalar(
        select(func.count()).where(
            Ticket.reopened_count > 0, Ticket.status.not_in(SOLVED), Ticket.updated_at >= since
        )
    )
    return RepeatRate(repeated + (reopened or 0), len(solved) + (reopened or 0))


def _issue(intents: list[str], orders: list[str]) -> set[str]:
    return {f"intent:{i}" for i in intents or ()} | {f"order:{o}" for o in orders or ()}

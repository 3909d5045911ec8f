"""The wallboard's omnichannel tiles, read from the database: Telegram and email conversations
waiting for a first answer, tickets past the answer promise, callbacks waiting, and the
repeat-contact rate of the last seven days (from the analytics rollup)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.analytics.models import TicketDayRollup
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.models import Channel, Ticket, TicketStatus

WRITTEN = (Channel.TELEGRAM, Channel.EMAIL)
UNANSWERED = (TicketStatus.NEW, TicketStatus.OPEN)
REPEAT_DAYS = 7


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
    session: AsyncSession, now: datetime, promise: timedelta, zone: tzinfo
) -> Backlog:
    """The tiles at `now`; `zone`: the contact centre's, whose local days the rollup counts."""
    overdue = Ticket.created_at <= now - promise
    rows = await session.execute(
        select(
            Ticket.channel, func.count(), func.min(Ticket.created_at), func.count().filter(overdue)
        )
        .where(
            Ticket.status.in_(UNANSWERED),
            Ticket.first_response_at.is_(None),
            Ticket.channel.in_(WRITTEN),
        )
        .group_by(Ticket.channel)
    )  # one pass over the tickets: on millions of them it is the costly part
    waiting: dict[Channel, Waiting] = {}
    late = 0
    for channel, count, oldest, late_here in rows:
        waiting[channel] = Waiting(count, oldest)
        late += late_here
    # When any is late, the oldest of all is late too.
    oldest = min((w.oldest for w in waiting.values() if w.oldest is not None), default=None)
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
        breaching=Waiting(late, oldest if late else None),
        callbacks=Waiting(*due),
        repeat=await repeat_rate(session, now, zone),
    )


async def repeat_rate(session: AsyncSession, now: datetime, zone: tzinfo) -> RepeatRate:
    """Tickets solved in the last seven local days (today included) and how many of them the
    customer came back about, from the analytics rollup (callcenter.analytics: same order
    number or intent within 7 days of solving; serve refreshes it every 30 s)."""
    first = now.astimezone(zone).date() - timedelta(days=REPEAT_DAYS - 1)
    solved, repeated = (
        await session.execute(
            select(
                func.coalesce(func.sum(TicketDayRollup.tickets), 0),
                func.coalesce(func.sum(TicketDayRollup.repeats), 0),
            ).where(TicketDayRollup.metric == "solved", TicketDayRollup.day >= first)
        )
    ).one()
    return RepeatRate(int(repeated), int(solved))

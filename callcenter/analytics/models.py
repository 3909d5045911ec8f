"""Rollup tables of the analytics pages.

Each rollup row is recomputed whole from the core tables (a day of contacts, one ticket), never
adjusted by deltas, so a refresh can be repeated or interrupted and the figures stay exact.
Days and hours are local to ``Settings.timezone``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.models import Base, BigID, Interaction, JSONType, Ticket

NO_AGENT = 0
"""``agent_id`` of rows nobody handled (kept non-null so it can be part of a key)."""

# The refresher finds a day's contacts and the tickets changed since its last run by these.
Index("ix_analytics_interactions_occurred_at", Interaction.occurred_at)
Index("ix_analytics_tickets_updated_at", Ticket.updated_at)


class ContactRollup(Base):
    """Inbound contacts of one local day and hour, by channel, queue, agent and first intent."""

    __tablename__ = "analytics_contacts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent: Mapped[str] = mapped_column(String(64), primary_key=True)
    contacts: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    answered_in_sl: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)


class TransitionRollup(Base):
    """A customer's next inbound contact within 24 hours, by the day of the first one."""

    __tablename__ = "analytics_transitions"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    from_channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    to_channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    unanswered: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    moves: Mapped[int] = mapped_column(Integer, default=0)


class TicketFact(Base):
    """One ticket's figures: first response, resolution and whether the customer came back."""

    __tablename__ = "analytics_tickets"
    __table_args__ = (
        Index("ix_analytics_tickets_day", "day"),
        Index("ix_analytics_tickets_solved_day", "solved_day"),
        # a median reads one bucket of one channel from these alone (index-only on PostgreSQL)
        Index("ix_analytics_tickets_frt", "channel", "frt_seconds", "day", "agent_id"),
        Index(
            "ix_analytics_tickets_resolution", "channel", "resolution_seconds", "day", "agent_id"
        ),
    )

    ticket_id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=False)
    customer_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int] = mapped_column(Integer, default=NO_AGENT)
    intent: Mapped[str] = mapped_column(String(64), default="")
    frt_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    solved_day: Mapped[date | None] = mapped_column(Date, default=None)
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)


class TicketDayRollup(Base):
    """Tickets of one local day by channel and agent, per ``metric``:

    - ``created``: tickets opened that day (``bucket`` 0);
    - ``frt`` and ``resolution``: tickets opened that day with that duration's bucket
      (``callcenter.analytics.buckets``) and the seconds summed;
    - ``solved``: tickets solved that day (``bucket`` 0) and how many were repeat contacts.
    """

    __tablename__ = "analytics_ticket_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    agent_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    tickets: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    repeats: Mapped[int] = mapped_column(Integer, default=0)


class NpsRollup(Base):
    """Survey answers of one local day (of answering) by the ticket's channel and agent."""

    __tablename__ = "analytics_nps"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    agent_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    promoters: Mapped[int] = mapped_column(Integer, default=0)
    detractors: Mapped[int] = mapped_column(Integer, default=0)


class RefreshState(Base):
    """Where the refresher got to: a watermark per source and when it last finished."""

    __tablename__ = "analytics_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime | None] = mapped_column(default=None)
    timezone: Mapped[str] = mapped_column(String(64), default="")
    """The zone whose local days the rollups were built in; another zone means a rebuild."""
    gaps: Mapped[list[int]] = mapped_column(JSONType, default=list)
    """Ids in the look-back below the watermark that were not committed yet at the last run:
    the only old ids a later run (also after a restart) has to examine."""


class DirtyCustomer(Base):
    """A customer whose history changed in place (merged into, erased): the refresher
    recomputes the days and tickets they touch, then deletes the row. Written in the same
    transaction as the change, so a crash cannot lose it."""

    __tablename__ = "analytics_dirty"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger)

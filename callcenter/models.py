"""The database schema, as typed SQLAlchemy 2 models.

The schema itself is created only by the Alembic migrations in ``migrations/``; a test checks
that autogenerate against these models finds nothing to change.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
BigID = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        name=cls.__name__.lower(),
    )


class IdentityKind(enum.StrEnum):
    PHONE = "phone"
    TELEGRAM = "telegram"
    EMAIL = "email"


class Channel(enum.StrEnum):
    CALL = "call"
    TELEGRAM = "telegram"
    EMAIL = "email"
    NOTE = "note"


class Direction(enum.StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"
    INTERNAL = "internal"


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"


class CallOutcome(enum.StrEnum):
    """How a call ended. The first four are inbound calls' (queue figures count them); the
    last three are outbound attempts' (callbacks) that did not reach the customer."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    TIMEOUT = "timeout"
    MISSED = "missed"
    NO_ANSWER = "no_answer"
    """Our outbound call rang and the customer did not pick up."""
    BUSY = "busy"
    """Our outbound call found the customer's line busy."""
    FAILED = "failed"
    """Our outbound call could not be placed to the customer (trunk or number)."""


OUTBOUND_UNREACHED = frozenset({CallOutcome.NO_ANSWER, CallOutcome.BUSY, CallOutcome.FAILED})
"""Outcomes of an outbound attempt that did not reach the customer: never an inbound miss."""


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class TimerStatus(enum.StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


class SuggestionStatus(enum.StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="ru")
    notes: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    identities: Mapped[list[Identity]] = relationship(back_populates="customer")


class Identity(Base):
    """One way to reach a customer: a phone number, a Telegram account or an email address."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[IdentityKind] = mapped_column(_enum(IdentityKind))
    value: Mapped[str] = mapped_column(String(320))
    display: Mapped[str] = mapped_column(String(320), default="")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    failing: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role))
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    sip_endpoint: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    language: Mapped[str] = mapped_column(String(8), default="ru")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=20)
    abandoned_in_service_level: Mapped[bool] = mapped_column(Boolean, default=False)
    inbound_number: Mapped[str | None] = mapped_column(String(15), unique=True, default=None)
    """The dialled number (DID, digits only) whose trunk calls this queue takes; None: calls
    reach it only through the dialplan (``support`` takes every number no queue has)."""
    # The Asterisk side, written to queues_managed.conf for queues created on /admin/queues
    # (managed); the shipped support and sales stay in queues.conf and ignore these.
    managed: Mapped[bool] = mapped_column(Boolean, default=False)
    strategy: Mapped[str] = mapped_column(String(16), default="rrmemory")
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer, default=15)
    wrapup_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    """None: the product-wide wrap-up (queue-common, QUEUE_WRAPUP_SECONDS)."""
    max_callers: Mapped[int] = mapped_column(Integer, default=0)
    """0: no limit."""
    members: Mapped[list[QueueMember]] = relationship(
        cascade="all, delete-orphan", order_by="QueueMember.interface", lazy="selectin"
    )


class QueueMember(Base):
    """A static member of a managed queue (always in it, unlike agents who log in)."""

    __tablename__ = "queue_members"
    __table_args__ = (UniqueConstraint("queue_id", "interface"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"))
    interface: Mapped[str] = mapped_column(String(64))
    penalty: Mapped[int] = mapped_column(Integer, default=0)
    member_name: Mapped[str] = mapped_column(String(200), default="")


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_customer_status", "customer_id", "status"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus), default=TicketStatus.NEW)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    subject: Mapped[str] = mapped_column(String(500), default="")
    intents: Mapped[list[str]] = mapped_column(JSONType, default=list)
    order_numbers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    solved_at: Mapped[datetime | None] = mapped_column(default=None)
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)


class Interaction(Base):
    """One message or call in any channel.

    ``external_id`` is the channel's own key (Telegram ``chat:message``, the email Message-ID,
    the Asterisk Linkedid); unique per channel so a second delivery is never stored twice.
    """

    __tablename__ = "interactions"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_interactions_customer_time", "customer_id", "occurred_at"),
        Index("ix_interactions_ticket_time", "ticket_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text, default=None)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    intents: Mapped[list[str]] = mapped_column(JSONType, default=list)
    order_numbers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Call(Base):
    """Telephony details of an Interaction of channel ``call``."""

    __tablename__ = "calls"

    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id"), primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    queue: Mapped[str | None] = mapped_column(String(64), default=None)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    agent_endpoint: Mapped[str | None] = mapped_column(String(64), default=None)
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    wait_seconds: Mapped[int] = mapped_column(Integer, default=0)
    talk_seconds: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[CallOutcome] = mapped_column(_enum(CallOutcome))
    recording_path: Mapped[str | None] = mapped_column(String(500), default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class OrderRef(Base):
    """An order number mentioned by a customer, indexed for search and merge suggestions."""

    __tablename__ = "order_refs"
    __table_args__ = (UniqueConstraint("order_number", "customer_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    order_number: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MergeSuggestion(Base):
    """Two profiles that may be one person, waiting for an agent's decision."""

    __tablename__ = "merge_suggestions"
    __table_args__ = (UniqueConstraint("customer_id", "other_customer_id", "reason"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    other_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(String(320), default="")
    status: Mapped[SuggestionStatus] = mapped_column(
        _enum(SuggestionStatus), default=SuggestionStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Outbox(Base):
    """A message waiting to be sent; retried with backoff until sent or given up."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_recipient", "channel", "recipient", "status"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    """Set while a worker is sending the row; a lapsed lease lets another worker retry it."""
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class Timer(Base):
    """Durable scheduled work; ``key`` makes arming idempotent."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    due_at: Mapped[datetime] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[TimerStatus] = mapped_column(_enum(TimerStatus), default=TimerStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    fired_at: Mapped[datetime | None] = mapped_column(default=None)


class ScreenPop(Base):
    """What a screen-pop showed an agent: did they have the history in front of them?"""

    __tablename__ = "screen_pops"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    agent_interface: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), default=None)
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    ticket_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    interaction_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    """How many open browser tabs of the agent received the card."""
    shown_at: Mapped[datetime] = mapped_column(default=utcnow)

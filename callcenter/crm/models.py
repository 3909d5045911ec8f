"""Tables of the CRM integration: what each push created in the CRM, webhook subscriptions and
the log of every webhook delivery attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.models import Base, BigID, JSONType, Ticket, utcnow


class CrmRecord(Base):
    """A CRM entity made for one of ours: the lead/deal of a ticket, the call of a call."""

    __tablename__ = "crm_records"
    __table_args__ = (UniqueConstraint("provider", "local_kind", "local_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    local_kind: Mapped[str] = mapped_column(String(16))
    local_id: Mapped[int] = mapped_column(BigID)
    remote_type: Mapped[str] = mapped_column(String(32))
    remote_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedCheckpoint(Base):
    """How far the catch-up scan of one source (tickets, messages, calls, solved) has read."""

    __tablename__ = "crm_feed_checkpoints"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigID, default=0)
    last_at: Mapped[datetime | None] = mapped_column(default=None)


Index("ix_tickets_solved_at", Ticket.solved_at)  # the catch-up scan reads solves by time


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    description: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One attempt to deliver one event to one subscription."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    outbox_id: Mapped[int] = mapped_column(BigID, index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

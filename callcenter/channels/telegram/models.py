"""Tables of the Telegram channel: seen updates (exactly-once intake) and callback requests.

Imported at the bottom of ``callcenter.models`` so that one metadata (and Alembic) sees them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.models import Base, BigID, JSONType, _enum, utcnow


class CallbackStatus(enum.StrEnum):
    REQUESTED = "requested"
    ASSIGNED = "assigned"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


OPEN_CALLBACK_STATUSES = (CallbackStatus.REQUESTED, CallbackStatus.ASSIGNED)


class CallbackRequest(Base):
    """A customer asked to be called back; ``phone`` is empty until the customer shares one."""

    __tablename__ = "callback_requests"
    __table_args__ = (Index("ix_callback_requests_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    phone: Mapped[str] = mapped_column(String(32), default="")
    channel: Mapped[str] = mapped_column(String(16), default="telegram")
    status: Mapped[CallbackStatus] = mapped_column(
        _enum(CallbackStatus), default=CallbackStatus.REQUESTED
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    # Dialling (callcenter.automation.callbacks and the telephony's dialler):
    queue: Mapped[str] = mapped_column(String(64), default="")
    """The queue whose agents should call back; empty: any queue."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Times the customer's phone was rung."""
    agent_endpoint: Mapped[str] = mapped_column(String(64), default="")
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    """Indexed: the /callbacks list shows finished callbacks newest attempt first."""
    outcome: Mapped[str] = mapped_column(String(200), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    """While dialling, the dialler holding it; a lapsed lease lets another take it again."""


class TelegramUpdate(Base):
    """An update_id already stored: a second delivery of it is skipped.

    An update whose processing failed is kept here with the error and its raw JSON, so that
    a poison update neither blocks the queue nor gets lost.
    """

    __tablename__ = "telegram_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    error: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)

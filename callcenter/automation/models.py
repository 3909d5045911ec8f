"""Tables of the automation: stored rules, the log of their firings, survey answers.

Callback tasks are ``CallbackRequest`` rows of the Telegram channel's models (one table for
"call me" requests from any source). Imported at the bottom of ``callcenter.models`` so that
one metadata (and Alembic) sees these tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.models import Base, BigID, JSONType, utcnow


class Rule(Base):
    """One automation rule: on ``trigger``, if ``conditions`` hold, run ``actions``.

    ``templates`` maps ``message.lang.part`` (``ack_email.ru.subject``) to Jinja2 source that
    admins may edit; actions name the message they send.
    """

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    trigger: Mapped[str] = mapped_column(String(32), index=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    templates: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    """For ``ticket_unanswered``: how long a message may wait for an agent's answer."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RuleFiring(Base):
    """A rule whose conditions held; ``key`` (rule and event) makes every firing happen once."""

    __tablename__ = "rule_firings"
    __table_args__ = (Index("ix_rule_firings_rule_at", "rule_id", "at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255), unique=True)
    trigger: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), default=None)
    outcome: Mapped[str] = mapped_column(String(16))
    """``done``, ``partial`` (some action skipped) or ``failed`` (nothing was changed)."""
    details: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SurveyAnswer(Base):
    """A customer's NPS score for a solved ticket; ``round`` counts reopenings, one answer each."""

    __tablename__ = "survey_answers"
    __table_args__ = (UniqueConstraint("ticket_id", "round"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    round: Mapped[int] = mapped_column(Integer, default=0)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(16))
    answered_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

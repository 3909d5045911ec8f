"""The agent's after-call work: one wrap-up per answered call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.models import Base, BigID, utcnow


class WrapUp(Base):
    """What the agent recorded after a call; it feeds the post-call summary email."""

    __tablename__ = "wrapups"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id"), unique=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    disposition: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    ticket_status: Mapped[str] = mapped_column(String(16), default="")
    """The status the agent set on the call's ticket; empty when left unchanged."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

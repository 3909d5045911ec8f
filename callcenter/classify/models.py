"""The admins' pattern dictionary: one row, versioned so every process notices a change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.models import Base, JSONType, utcnow

DICTIONARY_ROW = 1


class ClassifierDictionary(Base):
    """``patterns`` is shaped like patterns.toml; None means the shipped defaults are in use.

    ``version`` goes up with every save or reset (never back), so a process compares one
    integer to know whether its classifier is current.
    """

    __tablename__ = "classifier_dictionary"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    patterns: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")

"""Tables of the email channel: IMAP checkpoints and mail that could not be stored.

Registered with the rest of the schema in ``callcenter.schema`` (one metadata for Alembic).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.models import Base, BigID, utcnow


class ImapCheckpoint(Base):
    """How far one mailbox has been read: UIDs up to ``last_uid`` are stored.

    Advanced in the same transaction as the mail it covers, so a restart neither skips nor
    re-imports; a new ``uidvalidity`` means the server renumbered the mailbox and it is read
    again from the start (Message-ID dedupe keeps that from storing anything twice).
    """

    __tablename__ = "imap_checkpoints"
    __table_args__ = (UniqueConstraint("account", "mailbox"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    account: Mapped[str] = mapped_column(String(320))
    mailbox: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EmailFailure(Base):
    """A mail that could not be stored (not an email, no usable sender, a bug).

    The raw bytes are kept under ``<data_dir>/email-failed/<sha256>.eml`` (``path``); in IMAP
    the mail also stays unseen.
    """

    __tablename__ = "email_failures"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    source: Mapped[str] = mapped_column(String(500))
    """Where it came from: ``imap:<account>/<mailbox>#<uid>`` or the imported file."""
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(500), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

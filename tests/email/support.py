"""Building settings and mail for the email worker tests, and reading what they stored."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.models import Channel, Interaction, Outbox, Ticket

SHOP = "Магазин <support@shop.example>"
FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2025, 11, 14, 11, 0, tzinfo=UTC)


def settings(tmp_path: Path, *, dovecot: Any = None, smtp: Any = None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "smtp_from": SHOP,
        "smtp_security": "none",
        "imap_security": "none",
    }
    if dovecot is not None:
        values |= {
            "imap_host": dovecot.host,
            "imap_port": dovecot.port,
            "imap_user": dovecot.user,
            "imap_password": dovecot.password,
        }
    if smtp is not None:
        values |= {"smtp_host": smtp.host, "smtp_port": smtp.port}
    return Settings(**(values | extra))


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: tuple[str, ...] = (),
    date: datetime = T0,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain UTF-8 mail to the shop, as a mail client would write it."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = SHOP
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    if message_id:
        message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        message["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


async def emails(sessions: async_sessionmaker[AsyncSession]) -> list[Interaction]:
    """Stored inbound and outbound emails, oldest first."""
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Interaction)
                .where(Interaction.channel == Channel.EMAIL)
                .order_by(Interaction.occurred_at, Interaction.id)
            )
        )


async def notes(sessions: async_sessionmaker[AsyncSession]) -> list[Interaction]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Interaction)
                .where(Interaction.channel == Channel.NOTE)
                .order_by(Interaction.id)
            )
        )


async def tickets(sessions: async_sessionmaker[AsyncSession]) -> list[Ticket]:
    async with sessions() as session:
        return list(await session.scalars(select(Ticket).order_by(Ticket.id)))


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as session:
        return list(await session.scalars(select(Outbox).order_by(Outbox.id)))

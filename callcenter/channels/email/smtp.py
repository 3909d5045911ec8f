"""Sending email outbox rows over SMTP (aiosmtplib).

Payload: ``{"to", "to_name", "subject", "text", "html", "ticket_id", "auto", "in_reply_to",
"language"}``, all optional but ``text``; ``to`` defaults to the row's recipient. The Message-ID
is derived from the row, so a retry after an unclear failure sends the same message again and
mail clients show it once.

Failures: a refused recipient or a rejected message (5xx) gives up; no connection, a timeout,
a 4xx answer, or our own login or sender being refused (a configuration problem to fix, after
which the mail should still go out) are retried with the outbox's backoff.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter import health
from callcenter.channels.email.compose import Draft, InvalidAddress, address, build_message
from callcenter.channels.email.imap import check_security
from callcenter.channels.email.threading import (
    is_header_safe_id,
    outbox_message_id,
    own_domain,
    references_for,
    reply_subject,
    tag_subject,
)
from callcenter.config import Settings
from callcenter.domain.errors import DomainError
from callcenter.domain.identity import normalize_email
from callcenter.models import (
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Outbox,
    OutboxStatus,
    Ticket,
    utcnow,
)
from callcenter.outbox import PermanentFailure, RetryLater

log = logging.getLogger(__name__)

TIMEOUT = 60.0


@dataclass(frozen=True)
class Thread:
    """What the database knows about the conversation a row answers."""

    subject: str
    language: str
    parent: str | None
    ids: tuple[str, ...]
    failing: bool


class SmtpSender:
    channel = Channel.EMAIL.value

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        *,
        timeout: float = TIMEOUT,
    ) -> None:
        check_security("smtp", settings.smtp_security, settings.smtp_host)
        self.settings = settings
        self.sessions = sessions
        self.timeout = timeout
        self.domain = own_domain(settings.smtp_from)

    async def send(self, item: Outbox) -> str:
        payload: dict[str, Any] = item.payload or {}
        recipient = str(payload.get("to") or item.recipient)
        try:
            address("", recipient)
        except InvalidAddress as exc:
            raise PermanentFailure(str(exc)) from None
        ticket_id = payload.get("ticket_id") or item.ticket_id
        automatic = bool(payload.get("auto"))
        thread = await self._thread(item, ticket_id, recipient, payload.get("in_reply_to"))
        if automatic and thread.failing:
            raise PermanentFailure(f"{recipient} bounced before; no automatic mail is sent to it")
        subject = str(payload.get("subject") or "")
        if not subject.strip():
            subject = reply_subject(thread.subject) if thread.parent else thread.subject
        message_id = outbox_message_id(item.id, item.created_at, item.recipient, self.domain)
        draft = Draft(
            message_id=message_id,
            sender=self.settings.smtp_from,
            to=recipient,
            to_name=str(payload.get("to_name") or ""),
            subject=tag_subject(subject, ticket_id),
            text=str(payload.get("text") or ""),
            html=payload.get("html") or None,
            language=str(payload.get("language") or thread.language),
            ticket_id=ticket_id,
            automatic=automatic,
            in_reply_to=thread.parent,
            references=tuple(references_for(thread.ids, thread.parent)),
            date=utcnow(),
        )
        try:
            message = build_message(draft)
        except InvalidAddress as exc:
            raise PermanentFailure(str(exc)) from None
        await self._deliver(message, recipient)
        log.info("email outbox %s sent to %s as <%s>", item.id, recipient, message_id)
        return message_id

    async def _deliver(self, message: bytes, recipient: str) -> None:
        """Hand the message to the SMTP server. /status shows SMTP failing only when the server
        could not be used (no connection, a timeout, a 4xx, our login or sender refused); a
        refused recipient or message means the server works."""
        settings = self.settings
        sender = address("", parseaddr(settings.smtp_from)[1]).addr_spec
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[recipient],
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_user or None,
                password=settings.smtp_password or None,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            health.report_ok("smtp")
            codes = [r.code for r in exc.recipients]
            if codes and all(code >= 500 for code in codes):
                raise PermanentFailure(f"recipient refused: {exc.recipients[0]}") from None
            raise RetryLater(f"recipient deferred: {exc}") from None
        except (aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPSenderRefused) as exc:
            log.error("SMTP server refused our login or sender address: %s", exc)
            health.report_failure("smtp", f"login or sender refused: {exc}")
            raise RetryLater(f"SMTP configuration problem: {exc}") from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500 and isinstance(exc, aiosmtplib.SMTPDataError):
                health.report_ok("smtp")
                raise PermanentFailure(f"message rejected: {exc.code} {exc.message}") from None
            health.report_failure("smtp", f"SMTP {exc.code}: {exc.message}")
            raise RetryLater(f"SMTP {exc.code}: {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = f"SMTP server unavailable: {type(exc).__name__}: {exc}"
            health.report_failure("smtp", error)
            raise RetryLater(error) from None
        health.report_ok("smtp")

    async def _thread(
        self, item: Outbox, ticket_id: int | None, recipient: str, in_reply_to: Any
    ) -> Thread:
        async with self.sessions() as session:
            failing = await self._failing(session, recipient)
            ticket = await session.get(Ticket, ticket_id) if ticket_id else None
            if ticket is None:
                parent = str(in_reply_to) if in_reply_to else None
                return Thread("", self.settings.language, parent, (), failing)
            customer = await session.get(Customer, ticket.customer_id)
            received = await self._received(session, ticket.id)
            sent = await self._sent(session, ticket.id, item.id)
        parent = str(in_reply_to) if in_reply_to else None
        inbound = [mid for _, mid in received]
        if parent is None and inbound:
            parent = inbound[-1]
        ids = tuple(mid for _, mid in sorted(received + sent, key=lambda pair: pair[0]))
        language = customer.language if customer else self.settings.language
        return Thread(ticket.subject, language, parent, ids, failing)

    async def _failing(self, session: AsyncSession, recipient: str) -> bool:
        try:
            value = normalize_email(recipient)
        except DomainError:
            return False
        flag = await session.scalar(
            select(Identity.failing).where(
                Identity.kind == IdentityKind.EMAIL, Identity.value == value
            )
        )
        return bool(flag)

    async def _received(self, session: AsyncSession, ticket_id: int) -> list[tuple[datetime, str]]:
        """The customer's mails on the ticket, oldest first, as (time, Message-ID)."""
        rows = await session.execute(
            select(Interaction.occurred_at, Interaction.external_id)
            .where(
                Interaction.ticket_id == ticket_id,
                Interaction.channel == Channel.EMAIL,
                Interaction.direction == Direction.INBOUND,
                Interaction.external_id.is_not(None),
            )
            .order_by(Interaction.occurred_at, Interaction.id)
        )
        return [(at, mid) for at, mid in rows.all() if is_header_safe_id(mid)]

    async def _sent(
        self, session: AsyncSession, ticket_id: int, before: int
    ) -> list[tuple[datetime, str]]:
        """Our earlier mails on the ticket, as (time, Message-ID)."""
        rows = await session.scalars(
            select(Outbox)
            .where(
                Outbox.ticket_id == ticket_id,
                Outbox.channel == Channel.EMAIL.value,
                Outbox.status == OutboxStatus.SENT,
                Outbox.id < before,
            )
            .order_by(Outbox.id)
        )
        return [
            (row.sent_at or row.created_at, row.external_id)
            for row in rows
            if row.external_id and is_header_safe_id(row.external_id)
        ]

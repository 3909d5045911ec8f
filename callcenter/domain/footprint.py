"""Where one customer's personal data lies: their rows by key, and the strings that identify
them (phone numbers in the forms callers' ids arrive in, addresses, Telegram ids and names).

Used by export and erasure; everything is gathered before erasure deletes the identities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import Text, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.email.models import EmailFailure
from callcenter.channels.telegram.models import TelegramUpdate
from callcenter.models import Call, Customer, Identity, IdentityKind, Interaction, Ticket

ATTACHMENTS = Path("attachments")
"""Attachment records' ``path`` is relative to ``<data_dir>/attachments``."""
FAILED_MAIL = Path("email-failed")
MAX_SCANNED_MAIL = 20 << 20
_TELEGRAM_PARTIES = ("from", "chat", "user", "contact", "sender_chat")
_MIN_TOKEN = 4
"""Shorter strings (a two-letter name) would match unrelated text when scrubbing."""


@dataclass
class Footprint:
    ids: list[int]
    """The profile and every profile merged into it."""
    interaction_ids: list[int] = field(default_factory=list)
    ticket_ids: list[int] = field(default_factory=list)
    linkedids: list[str] = field(default_factory=list)
    phones: set[str] = field(default_factory=set)
    """Every form a caller id of the customer's numbers may take (+7916…, 7916…, 8916…)."""
    emails: set[str] = field(default_factory=set)
    telegram_ids: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    """Everything that identifies the person, to scrub from free-form JSON."""

    @property
    def addresses(self) -> set[str]:
        """Outbox recipients that reach this person."""
        return self.phones | self.emails | self.telegram_ids

    def scrub(self, value: Any) -> Any:
        """``value`` (JSON) with every string that mentions the person replaced."""
        return _scrub(value, [t.casefold() for t in self.tokens if len(t) >= _MIN_TOKEN])


def _scrub(value: Any, tokens: list[str], replacement: str = "[erased]") -> Any:
    if isinstance(value, str):
        folded = value.casefold()
        return replacement if any(t in folded for t in tokens) else value
    if isinstance(value, list):
        return [_scrub(v, tokens, replacement) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, tokens, replacement) for k, v in value.items()}
    return value


def phone_forms(e164: str) -> set[str]:
    """``+79161234567`` → also ``79161234567``, ``9161234567`` and ``89161234567``."""
    forms = {e164, e164.lstrip("+")}
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return forms
    forms.add(phonenumbers.national_significant_number(number))
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms.add(re.sub(r"\D", "", national))
    return {f for f in forms if f}


async def gather(session: AsyncSession, ids: list[int]) -> Footprint:
    found = Footprint(ids)
    found.interaction_ids = list(
        await session.scalars(select(Interaction.id).where(Interaction.customer_id.in_(ids)))
    )
    found.ticket_ids = list(
        await session.scalars(select(Ticket.id).where(Ticket.customer_id.in_(ids)))
    )
    found.linkedids = list(
        await session.scalars(
            select(Call.linkedid).where(Call.interaction_id.in_(found.interaction_ids))
        )
    )
    for identity in await session.scalars(select(Identity).where(Identity.customer_id.in_(ids))):
        if identity.kind is IdentityKind.PHONE:
            found.phones |= phone_forms(identity.value)
        elif identity.kind is IdentityKind.EMAIL:
            found.emails.add(identity.value)
        else:
            found.telegram_ids.add(identity.value)
        found.tokens |= {identity.value, identity.display.strip().lstrip("@")}
    found.tokens |= found.phones
    names = await session.scalars(select(Customer.display_name).where(Customer.id.in_(ids)))
    found.tokens |= {n.strip() for n in names}
    found.tokens.discard("")
    return found


def names_telegram_user(raw: Any, telegram_ids: set[str]) -> bool:
    """Whether a raw update was sent by, to or about one of ``telegram_ids``."""
    if isinstance(raw, list):
        return any(names_telegram_user(v, telegram_ids) for v in raw)
    if not isinstance(raw, dict):
        return False
    for key, value in raw.items():
        if key in _TELEGRAM_PARTIES and isinstance(value, dict):
            party = value.get("id", value.get("user_id"))
            if party is not None and str(party) in telegram_ids:
                return True
        if names_telegram_user(value, telegram_ids):
            return True
    return False


async def telegram_updates(session: AsyncSession, found: Footprint) -> list[TelegramUpdate]:
    """Kept raw updates (failed ones) from or to the customer's Telegram accounts."""
    if not found.telegram_ids:
        return []
    text = cast(TelegramUpdate.raw, Text)
    candidates = await session.scalars(
        select(TelegramUpdate)
        .where(
            TelegramUpdate.raw.is_not(None),
            or_(*(text.contains(i, autoescape=True) for i in found.telegram_ids)),
        )
        .order_by(TelegramUpdate.update_id)
    )
    return [u for u in candidates if names_telegram_user(u.raw, found.telegram_ids)]


def failed_mail_path(failure: EmailFailure) -> Path:
    """Relative to the data directory, where AttachmentStore.keep_failed put it."""
    return FAILED_MAIL / f"{failure.sha256}.eml"


async def email_failures(
    session: AsyncSession, found: Footprint, data_dir: Path | None
) -> list[EmailFailure]:
    """Mail that could not be stored and came from, or mentions, one of the addresses."""
    if not found.emails:
        return []
    matched = []
    for failure in await session.scalars(select(EmailFailure).order_by(EmailFailure.id)):
        text = f"{failure.source}\n{failure.error}"
        if data_dir is not None:
            text += "\n" + _read_mail(data_dir / failed_mail_path(failure))
        folded = text.casefold()
        if any(address in folded for address in found.emails):
            matched.append(failure)
    return matched


def _read_mail(path: Path) -> str:
    try:
        with path.open("rb") as raw:
            return raw.read(MAX_SCANNED_MAIL).decode("latin-1")
    except OSError:
        return ""


def attachment_files(attachments: Iterable[dict[str, Any]]) -> list[str]:
    """Stored files of attachment records, relative to the data directory."""
    return [
        str(ATTACHMENTS / a["path"])
        for a in attachments
        if isinstance(a, dict) and isinstance(a.get("path"), str) and a["path"]
    ]


async def unshared_files(
    session: AsyncSession, found: Footprint, attachments: list[dict[str, Any]]
) -> list[str]:
    """The customer's attachment files that no other customer's message refers to.

    Files are content-addressed, so the same picture sent by two people is stored once.
    """
    files = []
    for record in attachments:
        if not (isinstance(record, dict) and isinstance(record.get("path"), str)):
            continue
        shared = await session.scalar(
            select(Interaction.id)
            .where(
                Interaction.id.not_in(found.interaction_ids),
                cast(Interaction.attachments, Text).contains(record["path"], autoescape=True),
            )
            .limit(1)
        )
        if shared is None:
            files += attachment_files([record])
    return sorted(set(files))

"""From a Telegram message to the domain: InboundMessage, phone linking, merge suggestions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from aiogram.types import Contact, Message, User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telegram import files
from callcenter.channels.telegram.texts import language_of
from callcenter.domain.customers import (
    attach_identity,
    find_identity,
    get_customer,
    merge_customers,
)
from callcenter.domain.errors import InvalidPhone
from callcenter.domain.identity import normalize, normalize_phone
from callcenter.domain.inbox import OPEN_STATUSES, InboundMessage
from callcenter.domain.suggestions import mentioned_identities, suggest
from callcenter.models import (
    Channel,
    Customer,
    Identity,
    IdentityKind,
    Interaction,
    Ticket,
)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAYBE_MENTION = re.compile(r"@|(?:\d\D{0,3}){7}")


def clean(text: str | None) -> str:
    """Text as stored: no NUL or other control characters, no lone surrogates."""
    if not text:
        return ""
    return _CONTROL.sub("", text.encode("utf-8", "replace").decode("utf-8"))


def external_id(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def display_name(user: User | None) -> str:
    if user is None:
        return ""
    name = " ".join(filter(None, [clean(user.first_name), clean(user.last_name)])).strip()
    return name or (f"@{clean(user.username)}" if user.username else "")


def _aware(moment: datetime | int | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if isinstance(moment, int):
        return datetime.fromtimestamp(moment, UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def message_text(message: Message) -> str:
    if message.contact is not None:
        return clean(message.contact.phone_number)
    return clean(message.text if message.text is not None else message.caption)


async def ticket_of(session: AsyncSession, chat_id: int, message_id: int) -> Ticket | None:
    """The ticket of a stored message in this chat (ours or the customer's)."""
    ticket_id = await session.scalar(
        select(Interaction.ticket_id).where(
            Interaction.channel == Channel.TELEGRAM,
            Interaction.external_id == external_id(chat_id, message_id),
        )
    )
    return None if ticket_id is None else await session.get(Ticket, ticket_id)


async def to_inbound(
    session: AsyncSession,
    message: Message,
    *,
    file_limit: int,
    automatic: bool = False,
) -> InboundMessage:
    """The InboundMessage for a private-chat message; a reply is filed with what it quotes."""
    user = message.from_user
    assert user is not None
    hint = None
    if message.reply_to_message is not None:
        quoted = await ticket_of(session, message.chat.id, message.reply_to_message.message_id)
        hint = quoted.id if quoted is not None else None
    return InboundMessage(
        channel=Channel.TELEGRAM,
        external_id=external_id(message.chat.id, message.message_id),
        identity_kind=IdentityKind.TELEGRAM,
        identity_value=str(user.id),
        occurred_at=_aware(message.date),
        text=message_text(message),
        display_name=display_name(user),
        attachments=files.describe(message, file_limit),
        ticket_hint=hint,
        automatic=automatic,
        language=language_of(user.language_code),
    )


async def edit_to_inbound(session: AsyncSession, message: Message) -> InboundMessage:
    """An edit is a new interaction pointing at the original (kept as it was first sent).

    It joins the original's ticket only while that ticket is open: editing an old message
    must not reopen a solved ticket.
    """
    user = message.from_user
    assert user is not None
    original_id = external_id(message.chat.id, message.message_id)
    original = await session.scalar(
        select(Interaction).where(
            Interaction.channel == Channel.TELEGRAM, Interaction.external_id == original_id
        )
    )
    ticket = None
    if original is not None and original.ticket_id is not None:
        ticket = await session.get(Ticket, original.ticket_id)
    is_open = ticket is not None and ticket.status in OPEN_STATUSES
    edited_at = _aware(message.edit_date)
    marker: dict[str, Any] = {
        "kind": "edit",
        "of": original_id,
        "interaction_id": original.id if original else None,
    }
    return InboundMessage(
        channel=Channel.TELEGRAM,
        external_id=f"{original_id}:edit:{int(edited_at.timestamp())}",
        identity_kind=IdentityKind.TELEGRAM,
        identity_value=str(user.id),
        occurred_at=edited_at,
        text=message_text(message),
        display_name=display_name(user),
        attachments=[marker],
        ticket_hint=ticket.id if is_open and ticket else None,
        automatic=original is not None and not is_open,
        language=language_of(user.language_code),
    )


@lru_cache(maxsize=1024)  # asked for when a run is read ahead, then by each handler
def mentions(text: str, region: str) -> frozenset[tuple[IdentityKind, str]]:
    """Phones and emails typed in a message, normalised as identities are."""
    if not _MAYBE_MENTION.search(text):
        return frozenset()
    found = mentioned_identities(text, region)
    return frozenset((kind, normalize(kind, value, region)) for kind, value in found)


async def suggest_from_text(
    session: AsyncSession,
    customer: Customer,
    text: str,
    region: str,
    owners: Mapping[tuple[IdentityKind, str], int] | None = None,
) -> int:
    """Email addresses and phone numbers typed in a message that belong to another profile
    become merge suggestions (never merges); returns how many were recorded.

    ``owners``: the owning customer of each mentioned identity that has one, read ahead.
    """
    made = 0
    for kind, value in mentions(text, region):
        if owners is None:
            identity = await find_identity(session, kind, value, region)
            owner_id = identity.customer_id if identity is not None else None
        else:
            owner_id = owners.get((kind, value))
        if owner_id is None:
            continue
        owner = await get_customer(session, owner_id)
        if await suggest(session, customer.id, owner.id, f"mentioned-{kind.value}", value):
            made += 1
    return made


class PhoneLink(StrEnum):
    ATTACHED = "attached"
    """The phone was new: now an identity of this customer."""
    MERGED = "merged"
    """The phone belonged to a profile without Telegram (an earlier caller): merged into it."""
    SUGGESTED = "suggested"
    """The phone belongs to someone with another Telegram account: a suggestion for an agent."""
    NOT_OWN = "not-own"
    """The contact card is not the sender's own: not linked."""
    INVALID = "invalid"


async def _has_telegram(session: AsyncSession, customer_id: int) -> bool:
    found = await session.scalar(
        select(Identity.id).where(
            Identity.customer_id == customer_id, Identity.kind == IdentityKind.TELEGRAM
        )
    )
    return found is not None


async def link_phone(
    session: AsyncSession,
    customer: Customer,
    contact: Contact,
    sender_id: int,
    region: str,
) -> tuple[PhoneLink, Customer, str]:
    """Link a shared contact; returns the outcome, the customer now holding the Telegram
    identity, and the normalised phone.

    Only a contact whose ``user_id`` is the sender is the sender's own number (Telegram fills
    it from the account when the "share my phone" button is used); any other card is treated
    as a number mentioned in a message.
    """
    try:
        phone = normalize_phone(clean(contact.phone_number), region)
    except InvalidPhone:
        return PhoneLink.INVALID, customer, ""
    identity = await find_identity(session, IdentityKind.PHONE, phone, region)
    owner = await get_customer(session, identity.customer_id) if identity else None
    if contact.user_id != sender_id:
        if owner is not None:
            await suggest(session, customer.id, owner.id, "mentioned-phone", phone)
        return PhoneLink.NOT_OWN, customer, phone
    if identity is None or owner is None:
        await attach_identity(
            session,
            customer,
            IdentityKind.PHONE,
            phone,
            source="telegram",
            verified=True,
            region=region,
        )
        return PhoneLink.ATTACHED, customer, phone
    if owner.id == customer.id:
        identity.verified = True
        return PhoneLink.ATTACHED, customer, phone
    if await _has_telegram(session, owner.id):
        await suggest(session, customer.id, owner.id, "telegram-phone", phone)
        return PhoneLink.SUGGESTED, customer, phone
    merged = await merge_customers(session, customer.id, owner.id, actor_name="telegram")
    identity.verified = True
    return PhoneLink.MERGED, merged, phone

"""Which ticket an email belongs to, and the ids and subject tags that make that work.

Our own Message-IDs are derived from the outbox row (``<row id>.<digest>@<our domain>``), so a
retry reuses the id, and a reply's In-Reply-To leads back to the row, and so to its ticket,
with a primary-key lookup. A ``[#1234]`` tag in the subject is the fallback for mail clients
that drop the threading headers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.models import Channel, Interaction, Outbox

_OUR_ID = re.compile(r"^(\d{1,18})\.([0-9a-f]{16})@")
_TAG = re.compile(r"\[#(\d{1,18})\]")
_REPLY_PREFIX = re.compile(
    r"^\s*((re|fwd?|aw|wg|sv|ответ|отв|пересл|переслано)\s*(\[\d+\]|\(\d+\))?\s*:\s*)+",
    re.IGNORECASE,
)
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
MAX_REFERENCES = 10


def own_domain(from_address: str) -> str:
    """The domain our Message-IDs use: that of the configured From address."""
    _, address = parseaddr(from_address)
    domain = address.rpartition("@")[2].strip().lower()
    return domain or "localhost"


def outbox_message_id(item_id: int, created_at: datetime, recipient: str, domain: str) -> str:
    """The Message-ID (without angle brackets) of the mail sent for one outbox row."""
    basis = f"{item_id}|{created_at.isoformat()}|{recipient}".encode()
    return f"{item_id}.{hashlib.sha256(basis).hexdigest()[:16]}@{domain}"


def outbox_id_of(message_id: str) -> int | None:
    """The outbox row id in what looks like one of our Message-IDs."""
    found = _OUR_ID.match(message_id)
    return int(found.group(1)) if found else None


def is_header_safe_id(message_id: str) -> bool:
    """Whether an id can go into In-Reply-To/References as it is."""
    return (
        bool(_VISIBLE_ASCII.match(message_id))
        and "<" not in message_id
        and ">" not in message_id
        and not message_id.startswith("sha256:")
        and len(message_id) <= 250
    )


def subject_ticket(subject: str) -> int | None:
    """The ticket number of a ``[#1234]`` tag in the subject."""
    found = _TAG.search(subject)
    return int(found.group(1)) if found else None


def tag_subject(subject: str, ticket_id: int | None) -> str:
    """The subject with our ``[#ticket]`` tag (added once, at the end)."""
    if ticket_id is None or f"[#{ticket_id}]" in subject:
        return subject
    return f"{subject} [#{ticket_id}]".strip()


def clean_subject(subject: str) -> str:
    """The topic: without Re:/Fwd:/Ответ: prefixes and ticket tags."""
    return " ".join(_REPLY_PREFIX.sub("", _TAG.sub(" ", subject)).split())


def reply_subject(subject: str) -> str:
    """``Re: topic``, never ``Re: Re: topic``."""
    topic = _REPLY_PREFIX.sub("", subject).strip()
    return f"Re: {topic}" if topic else "Re:"


def candidate_ids(in_reply_to: str | None, references: Sequence[str]) -> list[str]:
    """Ids to look up, the most telling first: the parent, then References newest first."""
    ordered = [in_reply_to] if in_reply_to else []
    ordered += reversed(references)
    return list(dict.fromkeys(i for i in ordered if i))


async def ticket_by_ids(session: AsyncSession, ids: Sequence[str], domain: str) -> int | None:
    """The ticket of the first id that is one of our sent mails or a stored email."""
    return first_ticket(ids, await tickets_of_ids(session, ids, domain))


def first_ticket(ids: Sequence[str], known: Mapping[str, int]) -> int | None:
    """The ticket of the first of ``ids`` in ``known`` (see `tickets_of_ids`)."""
    for message_id in ids:
        ticket_id = known.get(message_id)
        if ticket_id is not None:
            return ticket_id
    return None


async def tickets_of_ids(session: AsyncSession, ids: Iterable[str], domain: str) -> dict[str, int]:
    """The ticket of each of ``ids`` that is one of our sent mails (checked against its
    outbox row, so a forged id leads nowhere) or a stored email, in two queries at most
    however many ids: a whole batch of mail is threaded at once."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    ours = {message_id: outbox_id_of(message_id) for message_id in ids}
    row_ids = {row_id for row_id in ours.values() if row_id is not None}
    known: dict[str, int] = {}
    if row_ids:
        items = {
            item.id: item
            for item in await session.scalars(
                select(Outbox).where(
                    Outbox.id.in_(row_ids),
                    Outbox.channel == Channel.EMAIL.value,
                    Outbox.ticket_id.is_not(None),
                )
            )
        }
        for message_id, row_id in ours.items():
            item = items.get(row_id)  # type: ignore[arg-type]
            if (
                item is not None
                and item.ticket_id is not None
                and (
                    outbox_message_id(item.id, item.created_at, item.recipient, domain)
                    == message_id
                )
            ):
                known[message_id] = item.ticket_id
    stored = await session.execute(
        select(Interaction.external_id, Interaction.ticket_id).where(
            Interaction.channel == Channel.EMAIL,
            Interaction.external_id.in_(ids),
            Interaction.ticket_id.is_not(None),
        )
    )
    for external_id, ticket_id in stored:
        known.setdefault(external_id, ticket_id)
    return known


def references_for(thread: Iterable[str], parent: str | None) -> list[str]:
    """A References list: the thread's first id, then its newest, ending with the parent."""
    ids = [i for i in dict.fromkeys(thread) if is_header_safe_id(i) and i != parent]
    if parent:
        ids.append(parent)
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return ids

"""One update's unit of work: the open transaction, and what to do once it has committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiogram.types import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telegram.callbacks import customer_phone
from callcenter.channels.telegram.outbound import BotReply, Markup, queue_replies
from callcenter.domain.inbox import InboundMessage, IngestResult
from callcenter.models import IdentityKind, Outbox

AfterCommit = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Prepared:
    """A message stored ahead of its handler, with a run of others (see ``prestore``), as
    ``to_inbound`` makes it of ``source`` (not automatic)."""

    source: Message
    message: InboundMessage
    result: IngestResult


@dataclass
class Shared:
    """What the turns of a run of plain messages share (see ``prestore``): facts read for all
    of them with one query each, and their replies, queued together after the last handler."""

    queued: dict[str, bool] = field(default_factory=dict)
    """Whether each outbox dedupe key the run's handlers may ask about is taken."""
    phones: dict[int, str] = field(default_factory=dict)
    """The phone of each customer the run's handlers may greet ("" for none)."""
    owners: dict[tuple[IdentityKind, str], int] = field(default_factory=dict)
    """Owners of the phones and emails mentioned in the run's texts (absent: nobody's)."""
    replies: list[BotReply] = field(default_factory=list)


@dataclass
class Turn:
    session: AsyncSession
    update_id: int
    now: datetime
    events: list[object] = field(default_factory=list)
    """Domain events to publish on the bus after the commit."""
    after_commit: list[AfterCommit] = field(default_factory=list)
    """Calls that must not run before the data is safe (answering a button, fetching files)."""
    replies: int = 0
    prepared: Prepared | None = None
    took_prepared: bool = False
    shared: Shared | None = None

    def take_prepared(self, message: Message) -> Prepared | None:
        """``message`` as stored ahead for this turn, if it was."""
        if self.prepared is None or self.prepared.source is not message:
            return None
        self.took_prepared = True
        return self.prepared

    async def queued(self, dedupe_key: str) -> bool:
        """Whether a message with this dedupe key is already in the outbox."""
        if self.shared is not None and dedupe_key in self.shared.queued:
            return self.shared.queued[dedupe_key]
        found = await self.session.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key))
        return found is not None

    async def phone_of(self, customer_id: int) -> str:
        """The customer's phone (see ``customer_phone``); empty when none is known."""
        if self.shared is not None and customer_id in self.shared.phones:
            return self.shared.phones[customer_id]
        return await customer_phone(self.session, customer_id)

    async def reply(
        self,
        *,
        chat_id: int,
        customer_id: int,
        ticket_id: int | None,
        text: str,
        markup: Markup | None = None,
        dedupe_key: str | None = None,
    ) -> None:
        """Queue a bot message in this transaction; sent by the outbox after the commit."""
        key = dedupe_key or f"telegram:update:{self.update_id}:{self.replies}"
        self.replies += 1
        reply = BotReply(chat_id, customer_id, ticket_id, text, self.now, markup, key)
        if self.shared is None:
            await queue_replies(self.session, [reply])
            return
        self.shared.replies.append(reply)
        self.shared.queued[key] = True

"""One update's unit of work: the open transaction, and what to do once it has committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telegram.outbound import Markup, queue_reply
from callcenter.domain.inbox import InboundMessage, IngestResult
from callcenter.models import Interaction

AfterCommit = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Prepared:
    """A message stored ahead of its handler, with a run of others (see ``prestore``)."""

    message: InboundMessage
    result: IngestResult


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

    def take_prepared(self, message: InboundMessage) -> IngestResult | None:
        """The result of storing ``message`` if it was stored ahead for this turn."""
        if self.prepared is None or self.prepared.message != message:
            return None
        self.took_prepared = True
        return self.prepared.result

    async def reply(
        self,
        *,
        chat_id: int,
        customer_id: int,
        ticket_id: int | None,
        text: str,
        markup: Markup | None = None,
        dedupe_key: str | None = None,
    ) -> Interaction:
        """Queue a bot message in this transaction; sent by the outbox after the commit."""
        key = dedupe_key or f"telegram:update:{self.update_id}:{self.replies}"
        self.replies += 1
        return await queue_reply(
            self.session,
            chat_id=chat_id,
            customer_id=customer_id,
            ticket_id=ticket_id,
            text=text,
            at=self.now,
            markup=markup,
            dedupe_key=key,
        )

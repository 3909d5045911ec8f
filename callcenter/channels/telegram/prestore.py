"""Storing a run of plain private messages together, then handing each to its handler.

Most updates are plain private messages, which ``Conversation.on_message`` stores and answers.
For a run of them the processor stores them all at once first (one ``ingest_many``), reads
what their answers depend on with one query each (``Shared``), and calls the handler directly:
aiogram's routing would pick that same handler (see ``is_plain``). Each handler takes its result
from the turn (``Turn.take_prepared``) instead of ingesting again; one that does not (the
update was not what it looked like) makes the processor redo the run update by update through
the dispatcher, so the outcome is always that of handling the updates one after another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiogram.enums import ChatType
from aiogram.types import Message, Update
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telegram.inbound import mentions, to_inbound
from callcenter.channels.telegram.turn import Prepared, Shared, Turn
from callcenter.domain.inbox import ingest_many
from callcenter.models import Identity, IdentityKind, Outbox

Handler = Callable[[Message, Turn], Awaitable[None]]


def is_plain(update: Update) -> bool:
    """A private message from a person that is no command, contact card or reply."""
    message = update.message
    return (
        message is not None
        and message.chat.type == ChatType.PRIVATE
        and message.from_user is not None
        and not message.from_user.is_bot
        and message.contact is None
        and message.reply_to_message is None
        and not (message.text or message.caption or "").startswith("/")
    )


class Prestore:
    def __init__(self, file_limit: int, region: str, handler: Handler) -> None:
        self.file_limit = file_limit
        self.region = region
        self.handler = handler
        """What the router calls for a plain message (``Conversation.on_message``)."""

    async def __call__(
        self, session: AsyncSession, updates: Sequence[Update], *, savepoint: bool = True
    ) -> tuple[list[Prepared], Shared]:
        """Store the messages of plain updates (see ``is_plain``) in the caller's transaction;
        ``savepoint``: as for ``ingest_many``. Without it, the messages are taken to be new (the
        processor has just claimed their update ids; a message stored under another update id
        fails on its unique key, and the processor redoes the batch with savepoints)."""
        sources = []
        for update in updates:
            assert update.message is not None
            sources.append(update.message)
        inbound = [await to_inbound(session, m, file_limit=self.file_limit) for m in sources]
        results = await ingest_many(
            session, inbound, region=self.region, savepoint=savepoint, assume_new=not savepoint
        )
        prepared = [Prepared(s, m, r) for s, m, r in zip(sources, inbound, results, strict=True)]
        return prepared, await self._shared(session, prepared)

    async def _shared(self, session: AsyncSession, prepared: list[Prepared]) -> Shared:
        stored = [p for p in prepared if not p.result.duplicate]
        shared = Shared()
        keys = {f"telegram:handover:{p.result.ticket.id}" for p in stored if p.result.ticket}
        if keys:
            shared.queued = dict.fromkeys(keys, False)
            taken = select(Outbox.dedupe_key).where(Outbox.dedupe_key.in_(keys))
            shared.queued.update(dict.fromkeys(await session.scalars(taken), True))
        created = {p.result.customer.id for p in stored if p.result.customer_created}
        if created:
            shared.phones = dict.fromkeys(created, "")
            # Ascending, so that the row kept per customer is the one ``customer_phone`` picks.
            rows = await session.execute(
                select(Identity.customer_id, Identity.value)
                .where(Identity.customer_id.in_(created), Identity.kind == IdentityKind.PHONE)
                .order_by(Identity.verified, Identity.id)
            )
            shared.phones.update((customer, phone) for customer, phone in rows)
        wanted: dict[IdentityKind, set[str]] = {}
        for p in stored:
            for kind, value in mentions(p.message.text, self.region):
                wanted.setdefault(kind, set()).add(value)
        for kind, values in wanted.items():
            rows = await session.execute(
                select(Identity.value, Identity.customer_id).where(
                    Identity.kind == kind, Identity.value.in_(values)
                )
            )
            shared.owners.update(((kind, value), owner) for value, owner in rows)
        return shared

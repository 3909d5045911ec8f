"""Storing a run of plain private messages with one ``ingest_many`` before their handlers run.

Most updates are plain private messages, which ``Conversation.on_message`` stores and answers.
For a run of them the processor stores them all at once first; each handler then takes its
result from the turn (``Turn.take_prepared``) instead of ingesting again. A handler that does
not take it (the update was not what it looked like) makes the processor redo the run update by
update, so the outcome is always that of handling the updates one after another.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.enums import ChatType
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telegram.inbound import to_inbound
from callcenter.channels.telegram.turn import Prepared
from callcenter.domain.inbox import ingest_many


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
        and not (message.text or "").startswith("/")
    )


class Prestore:
    def __init__(self, file_limit: int, region: str) -> None:
        self.file_limit = file_limit
        self.region = region

    async def __call__(self, session: AsyncSession, updates: Sequence[Update]) -> list[Prepared]:
        """Store the messages of plain updates (see ``is_plain``) in the caller's transaction."""
        inbound = []
        for update in updates:
            assert update.message is not None
            inbound.append(await to_inbound(session, update.message, file_limit=self.file_limit))
        results = await ingest_many(session, inbound, region=self.region)
        return [Prepared(m, r) for m, r in zip(inbound, results, strict=True)]

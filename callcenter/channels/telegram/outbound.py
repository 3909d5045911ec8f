"""Messages to customers: the bot's own replies are queued in the outbox like agents' replies,
and ``TelegramSender`` delivers outbox rows of channel ``telegram``.

Sent as plain text, never with a parse mode, so an agent's or customer's ``<b>`` stays text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    ForceReply,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telegram import texts
from callcenter.channels.telegram.inbound import external_id
from callcenter.channels.telegram.redact import redact
from callcenter.models import (
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Outbox,
    Ticket,
    utcnow,
)
from callcenter.outbox import PermanentFailure, RetryLater

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT_UTF16 = 4096
UNAUTHORIZED_RETRY = 300.0
"""A revoked or mistyped token: keep the messages and retry after the admin fixes it."""

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply


@dataclass(frozen=True)
class BotReply:
    chat_id: int
    customer_id: int
    ticket_id: int | None
    text: str
    at: datetime
    markup: Markup | None = None
    dedupe_key: str | None = None


async def queue_replies(session: AsyncSession, replies: Sequence[BotReply]) -> None:
    """Record bot messages on the customers' timelines and queue them for sending, in order;
    one INSERT for all their interactions and one for their outbox rows (no ORM objects: this
    is on every message's path).

    Not agent replies: they neither set a ticket's first response time nor change its status.
    """
    if not replies:
        return
    ids = await session.scalars(
        insert(Interaction).returning(Interaction.id, sort_by_parameter_order=True),
        [
            {
                "customer_id": reply.customer_id,
                "ticket_id": reply.ticket_id,
                "channel": Channel.TELEGRAM,
                "direction": Direction.OUTBOUND,
                "text": reply.text,
                "occurred_at": reply.at,
            }
            for reply in replies
        ],
    )
    now = utcnow()
    rows = []
    for reply, interaction_id in zip(replies, ids, strict=True):
        payload: dict[str, Any] = {"text": reply.text, "interaction_id": interaction_id}
        if reply.markup is not None:
            payload["reply_markup"] = reply.markup.model_dump(mode="json", exclude_none=True)
        rows.append(
            {
                "channel": CHANNEL,
                "recipient": str(reply.chat_id),
                "payload": payload,
                "dedupe_key": reply.dedupe_key,
                "ticket_id": reply.ticket_id,
                "next_attempt_at": now,
            }
        )
    await session.execute(insert(Outbox), rows)


def _markup(raw: dict[str, Any] | None) -> Markup | None:
    if not raw:
        return None
    if "inline_keyboard" in raw:
        return InlineKeyboardMarkup.model_validate(raw)
    if "keyboard" in raw:
        return ReplyKeyboardMarkup.model_validate(raw)
    if raw.get("remove_keyboard"):
        return ReplyKeyboardRemove.model_validate(raw)
    if raw.get("force_reply"):
        return ForceReply.model_validate(raw)
    return None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT_UTF16) -> list[str]:
    """Parts of at most ``limit`` UTF-16 units, cut at a line break or space where possible."""
    parts: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        cut = limit
        while _utf16_len(rest[:cut]) > limit:
            cut -= 1
        window = rest[:cut]
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            if at > cut // 2:
                cut = at + len(separator)
                break
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n")
    if rest.strip() or not parts:
        parts.append(rest)
    return parts


class TelegramSender:
    """Delivers outbox rows: ``recipient`` is the chat id, ``payload`` holds ``text``,
    optional ``reply_markup`` (Bot API JSON) and ``interaction_id``."""

    channel = CHANNEL

    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        *,
        language: str = "ru",
        request_timeout: int = 30,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.language = language
        self.request_timeout = request_timeout

    async def send(self, item: Outbox) -> str | None:
        chat_id = int(item.recipient)
        text = str(item.payload.get("text") or "")
        if not text.strip():
            raise PermanentFailure("empty message text")
        parts = split_text(text)
        markup = _markup(item.payload.get("reply_markup"))
        message_id = 0
        try:
            for number, part in enumerate(parts, 1):
                sent = await self.bot.send_message(
                    chat_id,
                    part,
                    reply_markup=markup if number == len(parts) else None,
                    parse_mode=None,
                    request_timeout=self.request_timeout,
                )
                message_id = sent.message_id
        except TelegramRetryAfter as exc:
            raise RetryLater(_describe(exc), float(exc.retry_after)) from None
        except TelegramForbiddenError as exc:
            await self._blocked(chat_id, item, _describe(exc))
            raise PermanentFailure(_describe(exc)) from None
        except TelegramUnauthorizedError as exc:
            log.error("telegram rejected the bot token: check CALLCENTER_TELEGRAM_TOKEN")
            raise RetryLater(_describe(exc), UNAUTHORIZED_RETRY) from None
        except (TelegramBadRequest, TelegramNotFound, TelegramEntityTooLarge) as exc:
            await self._note_failure(item, texts.text(self.language, "send_failed", error=exc))
            raise PermanentFailure(_describe(exc)) from None
        except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as exc:
            raise RetryLater(_describe(exc)) from None
        except TelegramAPIError as exc:
            raise RetryLater(_describe(exc)) from None
        sent_id = external_id(chat_id, message_id)
        await self._delivered(chat_id, item, sent_id)
        return sent_id

    async def _identity(self, session: AsyncSession, chat_id: int) -> Identity | None:
        return await session.scalar(
            select(Identity).where(
                Identity.kind == IdentityKind.TELEGRAM, Identity.value == str(chat_id)
            )
        )

    async def _delivered(self, chat_id: int, item: Outbox, sent_id: str) -> None:
        """Clear a stale "blocked" mark; record a message queued without an interaction."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Identity)
                .where(
                    Identity.kind == IdentityKind.TELEGRAM,
                    Identity.value == str(chat_id),
                    Identity.failing.is_(True),
                )
                .values(failing=False)
            )
            if item.payload.get("interaction_id"):
                return
            identity = await self._identity(session, chat_id)
            if identity is None:
                return
            customer = await session.get(Customer, identity.customer_id)
            session.add(
                Interaction(
                    customer_id=customer.id if customer else identity.customer_id,
                    ticket_id=item.ticket_id,
                    channel=Channel.TELEGRAM,
                    direction=Direction.OUTBOUND,
                    external_id=sent_id,
                    text=str(item.payload.get("text") or ""),
                    occurred_at=utcnow(),
                )
            )

    async def _blocked(self, chat_id: int, item: Outbox, error: str) -> None:
        log.info("telegram chat %s blocked the bot; outbox %s given up", chat_id, item.id)
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Identity)
                .where(Identity.kind == IdentityKind.TELEGRAM, Identity.value == str(chat_id))
                .values(failing=True)
            )
        await self._note_failure(item, texts.text(self.language, "send_failed_blocked"))

    async def _note_failure(self, item: Outbox, note: str) -> None:
        """An internal note on the ticket, so the agent sees the reply did not arrive."""
        if item.ticket_id is None:
            return
        async with self.sessions() as session, session.begin():
            ticket = await session.get(Ticket, item.ticket_id)
            if ticket is None:
                return
            session.add(
                Interaction(
                    customer_id=ticket.customer_id,
                    ticket_id=ticket.id,
                    channel=Channel.NOTE,
                    direction=Direction.INTERNAL,
                    text=redact(note),
                    occurred_at=utcnow(),
                )
            )


def _describe(exc: Exception) -> str:
    return redact(f"{type(exc).__name__}: {exc}")[:1000]

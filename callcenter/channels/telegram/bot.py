"""The bot's conversation: what it stores and answers for each kind of update.

Handlers never call the Bot API before the commit: replies are queued in the outbox within the
update's transaction (``Turn.reply``), and everything else waits in ``Turn.after_commit``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    User,
)

from callcenter.automation.surveys import (
    CALLBACK_PREFIX,
    SurveySigner,
    answer_from_callback,
)
from callcenter.channels.telegram import texts
from callcenter.channels.telegram.callbacks import (
    CallbackRequested,
    fill_missing_phone,
    request_callback,
)
from callcenter.channels.telegram.files import DOWNLOADABLE, TelegramFiles
from callcenter.channels.telegram.hours import BusinessHours
from callcenter.channels.telegram.inbound import (
    PhoneLink,
    clean,
    display_name,
    edit_to_inbound,
    link_phone,
    suggest_from_text,
    to_inbound,
)
from callcenter.channels.telegram.orders import OrderStatus, OrderStatusProvider
from callcenter.channels.telegram.turn import Turn
from callcenter.classify import Classification, classify
from callcenter.domain.customers import resolve_customer
from callcenter.domain.errors import DomainError
from callcenter.domain.inbox import IngestResult, ingest
from callcenter.models import Customer, IdentityKind
from callcenter.outbox import enqueue

log = logging.getLogger(__name__)

CALL_ME = "callme"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
"""Channel posts, reactions and member changes are never asked for."""
ORDER_LOOKUP_TIMEOUT = 3.0
_DEEP_LINK_ORDER = re.compile(r"^(?:order|zakaz|o)?[-_]?(\d{4,10})$", re.IGNORECASE)


@dataclass(frozen=True)
class BotConfig:
    provider: OrderStatusProvider
    hours: BusinessHours
    files: TelegramFiles | None
    file_limit: int
    region: str = "RU"
    surveys: SurveySigner | None = None
    """Checks the signed NPS buttons the automation sends; None leaves them unanswered."""


def deep_link_order(payload: str | None) -> str | None:
    """The order number in a ``t.me/bot?start=order-12345`` payload, if it is one."""
    match = _DEEP_LINK_ORDER.match(payload or "")
    return match.group(1) if match else None


@cache  # aiogram's types are frozen: one keyboard per language serves every reply
def share_phone_keyboard(language: str) -> ReplyKeyboardMarkup:
    button = KeyboardButton(text=texts.text(language, "share_phone_button"), request_contact=True)
    return ReplyKeyboardMarkup(keyboard=[[button]], resize_keyboard=True, one_time_keyboard=True)


@cache
def call_me_keyboard(language: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=texts.text(language, "call_me_button"), callback_data=CALL_ME
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def _language(user: User | None) -> str:
    return texts.language_of(user.language_code if user else None)


class Conversation:
    """The handlers, sharing one configuration."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config

    # --- storing --------------------------------------------------------------------------

    async def store(
        self,
        turn: Turn,
        message: Message,
        *,
        automatic: bool = False,
        extra_orders: tuple[str, ...] = (),
        mentions: bool = True,
    ) -> IngestResult | None:
        """Ingest a private message; None when it was stored before (a repeated delivery)."""
        prepared = None if extra_orders or automatic else turn.take_prepared(message)
        if prepared is not None:
            inbound, result = prepared.message, prepared.result
        else:
            inbound = await to_inbound(
                turn.session, message, file_limit=self.config.file_limit, automatic=automatic
            )

            def classifier(text: str) -> Classification:
                found = classify(text)
                if not extra_orders:
                    return found
                numbers = tuple(dict.fromkeys([*extra_orders, *found.order_numbers]))
                return Classification(found.intents, numbers)

            result = await ingest(
                turn.session, inbound, classifier=classifier, region=self.config.region
            )
        if result.duplicate:
            return None
        turn.events.extend(result.events)
        if mentions:
            owners = turn.shared.owners if turn.shared is not None else None
            await suggest_from_text(
                turn.session, result.customer, inbound.text, self.config.region, owners
            )
        downloads = [a for a in inbound.attachments if a.get("kind") in DOWNLOADABLE]
        if downloads and self.config.files is not None:
            fetch = self.config.files.fetch_quietly
            turn.after_commit.append(lambda: fetch(downloads))
        return result

    # --- answering ------------------------------------------------------------------------

    async def greet(
        self, turn: Turn, message: Message, customer: Customer, ticket_id: int | None
    ) -> None:
        """Greeting, business hours, and the "share my phone" button if no phone is known."""
        user = message.from_user
        language = _language(user)
        first = clean(user.first_name).strip() if user else ""
        parts = [
            texts.text(language, "greeting", name=first)
            if first
            else texts.text(language, "greeting_anonymous"),
            self._hours_line(turn, language),
        ]
        markup = None
        if not await turn.phone_of(customer.id):
            parts.append(texts.text(language, "share_phone_hint"))
            markup = share_phone_keyboard(language)
        await turn.reply(
            chat_id=message.chat.id,
            customer_id=customer.id,
            ticket_id=ticket_id,
            text="\n\n".join(parts),
            markup=markup,
        )

    def _hours_line(self, turn: Turn, language: str) -> str:
        hours = self.config.hours
        key = "hours_open" if hours.is_open(turn.now) else "hours_closed"
        return texts.text(language, key, hours=hours.describe(language))

    async def _statuses(self, numbers: list[str]) -> list[OrderStatus]:
        known = []
        for number in numbers[:3]:
            try:
                async with asyncio.timeout(ORDER_LOOKUP_TIMEOUT):
                    status = await self.config.provider.status(number)
            except Exception:
                log.warning("order status lookup failed for %s", number, exc_info=True)
                continue
            if status is not None:
                known.append(status)
        return known

    async def respond(
        self, turn: Turn, message: Message, result: IngestResult, *, deep_link: bool = False
    ) -> None:
        """Answer the order status where the rule allows, else hand over to an agent once
        per ticket, saying what the customer wrote about."""
        ticket = result.ticket
        if ticket is None:
            return
        language = _language(message.from_user)
        orders = list(result.interaction.order_numbers or [])
        intents = list(result.interaction.intents or [])
        reply: dict[str, Any] = {
            "chat_id": message.chat.id,
            "customer_id": result.customer.id,
            "ticket_id": ticket.id,
            "markup": call_me_keyboard(language),
        }
        if orders and (deep_link or "delivery" in intents):
            known = await self._statuses(orders)
            if known:
                lines = []
                for status in known:
                    state = texts.order_state(language, status.state)
                    lines.append(
                        texts.text(language, "order_status", number=status.number, state=state)
                    )
                    if status.eta is not None:
                        lines.append(
                            texts.text(language, "order_eta", eta=f"{status.eta:%d.%m.%Y}")
                        )
                lines.append(texts.text(language, "order_more"))
                await turn.reply(text="\n".join(lines), **reply)
                return
        key = f"telegram:handover:{ticket.id}"
        if await turn.queued(key):
            return
        if orders:
            line = texts.text(language, "handover_order", orders=", №".join(orders))
        elif intents and (topic := texts.topic(language, intents[0])):
            line = texts.text(language, "handover_topic", topic=topic)
        else:
            line = texts.text(language, "handover")
        if not self.config.hours.is_open(turn.now):
            line += "\n" + self._hours_line(turn, language)
        await turn.reply(text=line, dedupe_key=key, **reply)

    # --- handlers -------------------------------------------------------------------------

    async def on_start(self, message: Message, command: CommandObject, turn: Turn) -> None:
        order = deep_link_order(command.args)
        result = await self.store(
            turn, message, automatic=order is None, extra_orders=(order,) if order else ()
        )
        if result is None:
            return
        await self.greet(
            turn, message, result.customer, result.ticket.id if result.ticket else None
        )
        if order is not None:
            await self.respond(turn, message, result, deep_link=True)

    async def on_message(self, message: Message, turn: Turn) -> None:
        result = await self.store(turn, message)
        if result is None:
            return
        if result.customer_created:
            await self.greet(
                turn, message, result.customer, result.ticket.id if result.ticket else None
            )
        await self.respond(turn, message, result)

    async def on_contact(self, message: Message, turn: Turn) -> None:
        result = await self.store(turn, message, automatic=True, mentions=False)
        if result is None or message.contact is None or message.from_user is None:
            return
        language = _language(message.from_user)
        outcome, customer, phone = await link_phone(
            turn.session, result.customer, message.contact, message.from_user.id, self.config.region
        )
        markup: Any = share_phone_keyboard(language)
        if outcome is PhoneLink.INVALID:
            reply = texts.text(language, "phone_invalid")
        elif outcome is PhoneLink.NOT_OWN:
            reply = texts.text(language, "phone_not_own")
        else:
            reply = texts.text(language, "phone_linked", phone=phone)
            if await fill_missing_phone(turn.session, customer.id, phone):
                reply += "\n" + texts.text(language, "callback_created", phone=phone)
            markup = ReplyKeyboardRemove()
        await turn.reply(
            chat_id=message.chat.id,
            customer_id=customer.id,
            ticket_id=None,
            text=reply,
            markup=markup,
        )

    async def on_edit(self, edited_message: Message, turn: Turn) -> None:
        inbound = await edit_to_inbound(turn.session, edited_message)
        result = await ingest(turn.session, inbound, region=self.config.region)
        if not result.duplicate:
            turn.events.extend(result.events)

    async def call_me(self, turn: Turn, user: User, chat_id: int) -> str:
        """Create (or find) the callback request and tell the customer; returns the short
        confirmation for the button."""
        language = _language(user)
        customer, _ = await resolve_customer(
            turn.session,
            IdentityKind.TELEGRAM,
            user.id,
            display_name=display_name(user),
            source="telegram",
            language=language,
            region=self.config.region,
        )
        request, created = await request_callback(
            turn.session, customer, self.config.hours, turn.now
        )
        if created:
            turn.events.append(
                CallbackRequested(
                    request.id, customer.id, request.ticket_id, request.phone, request.due_at
                )
            )
        markup: Any = None
        if not request.phone:
            reply = texts.text(language, "callback_need_phone")
            markup = share_phone_keyboard(language)
        else:
            key = "callback_created" if created else "callback_exists"
            reply = texts.text(language, key, phone=request.phone)
        await turn.reply(
            chat_id=chat_id,
            customer_id=customer.id,
            ticket_id=request.ticket_id,
            text=reply,
            markup=markup,
        )
        return texts.text(language, "callback_answer")

    async def on_call_me_button(self, callback_query: CallbackQuery, bot: Bot, turn: Turn) -> None:
        query = callback_query
        chat = query.message.chat if query.message is not None else None
        answer = ""
        if chat is not None and chat.type == ChatType.PRIVATE:
            answer = await self.call_me(turn, query.from_user, chat.id)
        turn.after_commit.append(lambda: bot.answer_callback_query(query.id, text=answer or None))

    async def on_survey_button(self, callback_query: CallbackQuery, bot: Bot, turn: Turn) -> None:
        """An NPS score pressed under the survey message: stored once, thanked."""
        query = callback_query
        key = "survey_invalid"
        if self.config.surveys is not None:
            try:
                _, event = await answer_from_callback(
                    turn.session,
                    self.config.surveys,
                    query.data or "",
                    query.from_user.id,
                    turn.now,
                )
            except DomainError:  # forged, stale, another customer's, or the ticket is gone
                pass
            else:
                key = "survey_thanks"
                if event is not None:
                    turn.events.append(event)
        text = texts.text(_language(query.from_user), key)
        turn.after_commit.append(lambda: bot.answer_callback_query(query.id, text=text))

    async def on_call_me_command(self, message: Message, turn: Turn) -> None:
        if message.from_user is not None:
            await self.call_me(turn, message.from_user, message.chat.id)

    async def on_group_command(self, message: Message, turn: Turn) -> None:
        """In groups the bot stores nothing; a command addressed to it gets a polite pointer."""
        enqueue(
            turn.session,
            channel="telegram",
            recipient=str(message.chat.id),
            payload={"text": texts.text(_language(message.from_user), "private_only")},
            dedupe_key=f"telegram:update:{turn.update_id}:group",
        )


def build_router(conversation: Conversation) -> Router:
    router = Router(name="callcenter-telegram")
    private = F.chat.type == ChatType.PRIVATE
    human = F.from_user.is_bot.is_(False)
    router.message.register(conversation.on_start, CommandStart(), private, human)
    router.message.register(conversation.on_call_me_command, Command("callme"), private, human)
    router.message.register(conversation.on_contact, F.contact, private, human)
    router.message.register(conversation.on_message, private, human)
    router.message.register(conversation.on_group_command, Command("start", "help"), ~private)
    router.edited_message.register(conversation.on_edit, private, human)
    router.callback_query.register(conversation.on_call_me_button, F.data == CALL_ME)
    router.callback_query.register(
        conversation.on_survey_button, F.data.startswith(f"{CALLBACK_PREFIX}:")
    )
    return router

"""The fake Bot API driven by a real aiogram Bot and Dispatcher, as the Telegram worker will."""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandObject, CommandStart
from aiogram.methods import SendMessage
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.fakes.botapi import BotApiServer
from tests.fakes.botapi.errors import ApiError
from tests.fakes.botapi.formatting import format_text

HOSTILE_NAME = '"><img src=x onerror=alert(1)>'
RUSSIAN = "Здравствуйте! Где мой заказ №12345? Ёжик, щука, «кавычки» — тире"
# 1x1 PNG header with real IHDR dimensions; enough for the server's size sniffing.
PNG_640x480 = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    + (640).to_bytes(4, "big")
    + (480).to_bytes(4, "big")
    + b"\x08\x02\x00\x00\x00"
)


@pytest.fixture
async def api() -> AsyncIterator[BotApiServer]:
    async with BotApiServer() as server:
        yield server


def make_bot(api: BotApiServer, token: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    return Bot(token or api.token, session=session)


@pytest.fixture
async def bot(api: BotApiServer) -> AsyncIterator[Bot]:
    bot = make_bot(api)
    yield bot
    await bot.session.close()


@contextlib.asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot) -> AsyncIterator[None]:
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        yield
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(task, 10)


# --- polling ---------------------------------------------------------------------------------


async def test_polling_receives_messages_in_order_and_confirms_them(api, bot):
    seen: list[str] = []
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        seen.append(message.text)
        await message.answer(message.text)

    texts = [RUSSIAN, "второе", "/start order-42"]
    updates = [api.push_message(1001, text) for text in texts]
    async with polling(dp, bot):
        await api.wait_sent(3)
        last_id = updates[-1]["update_id"]
        # aiogram confirms a batch with the offset of its next getUpdates.
        await api.wait_until(
            lambda: any(c.int("offset") == last_id + 1 for c in api.calls_to("getUpdates")),
            5,
            "the confirming offset",
        )
    assert seen == texts
    assert [m.text for m in api.sent] == texts
    assert api.pending_updates == 0
    assert [u["update_id"] for u in updates] == list(range(updates[0]["update_id"], last_id + 1))


async def test_unconfirmed_updates_come_again_and_confirmed_ones_never(api, bot):
    first = api.push_message(1001, "раз")
    api.push_message(1001, "два")

    again = [u.update_id for u in await bot.get_updates()]
    assert again == [u.update_id for u in await bot.get_updates()]
    assert again[0] == first["update_id"] and len(again) == 2

    assert await bot.get_updates(offset=again[-1] + 1) == []
    assert api.pending_updates == 0

    # The very same update again: already confirmed, so the server forgets it...
    assert api.push_raw(first) is not None
    assert await bot.get_updates(offset=again[-1] + 1) == []
    # ...while a redelivery under a fresh update_id reaches the bot with the same message.
    redelivered = api.push_raw(first, keep_id=False)
    [update] = await bot.get_updates(offset=again[-1] + 1)
    assert update.update_id == redelivered["update_id"] > again[-1]
    assert update.message.message_id == first["message"]["message_id"]
    assert update.message.text == "раз"


async def test_long_poll_answers_when_an_update_arrives(api, bot):
    poll = asyncio.create_task(bot.get_updates(timeout=50))
    await api.wait_calls("getUpdates")
    api.push_message(1001, "проснись")
    updates = await asyncio.wait_for(poll, 10)
    assert [u.message.text for u in updates] == ["проснись"]


async def test_a_second_poller_ends_the_first_with_a_conflict(api, bot):
    first = asyncio.create_task(bot.get_updates(timeout=50))
    await api.wait_calls("getUpdates")
    second = asyncio.create_task(bot.get_updates(timeout=1))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 10)
    assert await second == []


async def test_allowed_updates_filters_new_updates(api, bot):
    await bot.get_updates(allowed_updates=["message"])
    api.add_chat(1001)
    await bot.send_message(1001, "Выберите", reply_markup=yes_no())
    assert api.push_callback_query(1001, "yes") is None
    api.push_message(1001, "текст")
    assert [u.event_type for u in await bot.get_updates()] == ["message"]


# --- sending ----------------------------------------------------------------------------------


def yes_no() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Да", callback_data="yes"),
                InlineKeyboardButton(text="Нет", callback_data="no"),
            ]
        ]
    )


async def test_send_message_returns_a_message_aiogram_parses(api, bot):
    asked = api.push_message(1001, "Хочу оформить заказ")
    question_id = asked["message"]["message_id"]
    reply = await bot.send_message(
        1001,
        "<b>Заказ</b> принят",
        parse_mode="HTML",
        reply_markup=yes_no(),
        reply_parameters=ReplyParameters(message_id=question_id),
    )
    assert reply.message_id == question_id + 1
    assert reply.from_user.id == 42 and reply.from_user.is_bot
    assert reply.chat.id == 1001 and reply.chat.first_name == "Иван"
    assert reply.text == "Заказ принят"
    assert [(e.type, e.offset, e.length) for e in reply.entities] == [("bold", 0, 5)]
    assert reply.reply_to_message.text == "Хочу оформить заказ"
    assert reply.reply_markup.inline_keyboard[0][1].callback_data == "no"

    phone = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Поделиться номером", request_contact=True)]],
        resize_keyboard=True,
    )
    second = await bot.send_message(1001, "Ваш номер?", reply_to_message_id=question_id)
    third = await bot.send_message(1001, "Нажмите кнопку", reply_markup=phone)
    assert (second.message_id, third.message_id) == (question_id + 2, question_id + 3)
    assert third.reply_markup is None  # reply keyboards are not echoed in the Message
    assert [m.text for m in api.sent] == ["Заказ принят", "Ваш номер?", "Нажмите кнопку"]
    assert api.sent[0].source_text == "<b>Заказ</b> принят"
    assert api.sent[1].reply_to_message_id == question_id
    assert api.sent[2].buttons[0][0]["request_contact"] is True


async def test_contact_shared_from_the_reply_keyboard_reaches_the_bot(api, bot):
    update = api.push_message(1001, contact={"phone_number": "+79161234567"})
    [got] = await bot.get_updates()
    assert got.update_id == update["update_id"]
    assert got.message.contact.phone_number == "+79161234567"
    assert got.message.contact.user_id == got.message.from_user.id == 1001
    assert got.message.text is None


async def test_bad_requests_are_worded_like_telegram(api, bot):
    with pytest.raises(TelegramBadRequest, match="Bad Request: chat not found"):
        await bot.send_message(555, "кому?")
    api.push_message(-100777, "всем привет", chat_type="supergroup")
    phone = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Номер", request_contact=True)]])
    with pytest.raises(TelegramBadRequest, match="phone number can be requested in private"):
        await bot.send_message(-100777, "Ваш номер?", reply_markup=phone)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(-100777, "   ")
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(-100777, "ответ", reply_to_message_id=999)
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(-100777, "Заказ 12.3 готов", parse_mode="MarkdownV2")
    assert api.sent == []


async def test_callback_answer_and_edit(api, bot):
    api.add_chat(1001)
    sent = await bot.send_message(1001, "Подтвердить заказ?", reply_markup=yes_no())
    update = api.push_callback_query(1001, "yes")
    [got] = await bot.get_updates()
    query: CallbackQuery = got.callback_query
    assert query.data == "yes" and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="Готово")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    edited = await bot.edit_message_text(
        "Заказ подтверждён", chat_id=1001, message_id=sent.message_id
    )
    assert edited.text == "Заказ подтверждён" and edited.edit_date is not None
    assert edited.reply_markup is None  # editing without reply_markup drops the keyboard
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Заказ подтверждён", chat_id=1001, message_id=sent.message_id)
    assert api.callback_answers == [
        {
            "callback_query_id": update["callback_query"]["id"],
            "text": "Готово",
            "show_alert": False,
            "url": None,
        }
    ]
    assert [e.text for e in api.edits] == ["Заказ подтверждён"]
    assert await bot.send_chat_action(1001, "typing")


# --- faults -----------------------------------------------------------------------------------


async def test_429_raises_retry_after(api, bot):
    api.add_chat(1001)
    api.fail_next("sendMessage", 429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(1001, "первая попытка")
    assert caught.value.retry_after == 3
    assert caught.value.message.endswith("Original description: Too Many Requests: retry after 3")
    await bot.send_message(1001, "вторая попытка")
    assert [(c.status, c.params["text"]) for c in api.calls_to("sendMessage")] == [
        (429, "первая попытка"),
        (200, "вторая попытка"),
    ]
    assert [m.text for m in api.sent] == ["вторая попытка"]


async def test_5xx_storm_then_recovery(api, bot):
    api.add_chat(1001)
    api.fail_next("sendMessage", 502, count=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError, match="Bad Gateway"):
            await bot.send_message(1001, "шторм")
    await bot.send_message(1001, "прошло")
    assert [c.status for c in api.calls_to("sendMessage")] == [502, 502, 200]
    assert [m.text for m in api.sent] == ["прошло"]


async def test_lost_response_still_delivers_the_message(api, bot):
    api.add_chat(1001)
    api.fail_next("sendMessage", 504, lost_response=True)
    with pytest.raises(TelegramServerError, match="Gateway Timeout"):
        await bot.send_message(1001, "дубль?")
    assert [m.text for m in api.sent] == ["дубль?"]


async def test_blocked_chat_raises_forbidden(api, bot):
    api.add_chat(1001)
    await bot.send_message(1001, "до блокировки")
    api.block_chat(1001)
    with pytest.raises(TelegramForbiddenError) as caught:
        await bot.send_message(1001, "после блокировки")
    assert caught.value.message == "Forbidden: bot was blocked by the user"
    assert [m.text for m in api.sent] == ["до блокировки"]


async def test_wrong_token_is_unauthorized_and_unknown_method_not_found(api):
    stranger = make_bot(api, token="43:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api.base_url}/bot{api.token}/sendTelepathy", json={}) as response,
    ):
        assert response.status == 404
        assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert [(c.method, c.status) for c in api.calls] == [("getMe", 401), ("sendTelepathy", 404)]


# --- webhook ----------------------------------------------------------------------------------


async def test_webhook_delivers_with_secret_retries_and_runs_the_reply(api, bot):
    dp = Dispatcher()

    @dp.message(F.text)
    async def answer(message: Message) -> SendMessage:
        return message.answer(f"Получено: {message.text}")

    handler = SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token="s3cr3t")
    failures = [web.Response(status=500)]

    async def flaky(request: web.Request) -> web.StreamResponse:
        if failures:
            return failures.pop()
        return await handler.handle(request)

    app = web.Application()
    app.router.add_post("/tg", flaky)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/tg"
    try:
        assert await bot.set_webhook(url, secret_token="s3cr3t")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        update = api.push_message(1001, RUSSIAN)
        await api.wait_sent(1)
        info = await bot.get_webhook_info()
    finally:
        await runner.cleanup()
    assert api.sent[0].text == f"Получено: {RUSSIAN}"
    assert api.calls_to("sendMessage")[0].via_webhook_reply
    deliveries = [(d.update_id, d.status, d.secret_token) for d in api.webhook_deliveries]
    uid = update["update_id"]
    assert deliveries == [(uid, 500, "s3cr3t"), (uid, 200, "s3cr3t")]
    assert info.url == url and info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert await bot.delete_webhook()
    assert await bot.get_updates() == []


async def test_set_webhook_refuses_a_url_nobody_listens_on(api, bot):
    with pytest.raises(TelegramBadRequest, match="bad webhook"):
        await bot.set_webhook("http://127.0.0.1:9/tg", secret_token="s3cr3t")
    assert (await bot.get_webhook_info()).url == ""


# --- files ------------------------------------------------------------------------------------


async def test_get_file_and_download_return_the_bytes(api, bot):
    invoice = "Счёт №7 на 1 500 ₽".encode() * 100
    stored = api.register_file(invoice, file_name="счёт.pdf", mime_type="application/pdf")
    api.push_message(1001, "вот счёт", document=stored)
    api.push_message(1001, voice=b"OggS fake voice")
    first, second = await bot.get_updates()
    document = first.message.document
    assert (document.file_name, first.message.caption) == ("счёт.pdf", "вот счёт")
    file = await bot.get_file(document.file_id)
    assert file.file_size == len(invoice) and file.file_path.endswith(".pdf")
    assert (await bot.download_file(file.file_path)).read() == invoice
    voice = await bot.get_file(second.message.voice.file_id)
    assert (await bot.download_file(voice.file_path)).read() == b"OggS fake voice"

    photo = await bot.send_photo(1001, BufferedInputFile(PNG_640x480, "plan.png"), caption="план")
    assert [(p.width, p.height) for p in photo.photo] == [(90, 68), (320, 240), (640, 480)]
    largest = await bot.get_file(photo.photo[-1].file_id)
    assert (await bot.download_file(largest.file_path)).read() == PNG_640x480
    sent_doc = await bot.send_document(1001, BufferedInputFile(b"%PDF-1.4", "акт.pdf"))
    assert sent_doc.document.file_name == "акт.pdf"
    assert [m.file for m in api.sent] == [PNG_640x480, b"%PDF-1.4"]
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(1001, BufferedInputFile(b"not an image", "x.png"))
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("no-such-file")


# --- text safety ------------------------------------------------------------------------------


async def test_russian_text_and_a_hostile_name_round_trip_unchanged(api, bot):
    api.push_message(1001, RUSSIAN, from_user={"first_name": HOSTILE_NAME, "username": "x_y"})
    [got] = await bot.get_updates()
    assert got.message.text == RUSSIAN
    assert got.message.from_user.first_name == HOSTILE_NAME
    assert got.message.chat.first_name == HOSTILE_NAME

    plain = await bot.send_message(1001, f"{HOSTILE_NAME}, {RUSSIAN}")
    assert plain.text == f"{HOSTILE_NAME}, {RUSSIAN}"
    # Unescaped in HTML, Telegram refuses the message, naming the tag...
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.send_message(1001, f"<b>{HOSTILE_NAME}</b>", parse_mode="HTML")
    assert caught.value.message == (
        'Bad Request: can\'t parse entities: Unsupported start tag "img" at byte offset 5'
    )
    # ...and escaped, the customer sees exactly their name.
    escaped = await bot.send_message(1001, f"<b>{html.escape(HOSTILE_NAME)}</b>", parse_mode="HTML")
    assert escaped.text == HOSTILE_NAME
    assert [m.text for m in api.sent] == [f"{HOSTILE_NAME}, {RUSSIAN}", HOSTILE_NAME]


async def test_deep_link_start_and_an_edited_message_reach_handlers(api, bot):
    got: list[tuple[str, str | None]] = []
    dp = Dispatcher()

    @dp.message(CommandStart(deep_link=True))
    async def start(message: Message, command: CommandObject) -> None:
        got.append(("start", command.args))
        await message.answer("Привет!")

    @dp.edited_message()
    async def edited(message: Message) -> None:
        got.append(("edited", message.text))
        await message.answer("Вижу правку")

    first = api.push_message(1001, "/start order-42")
    api.push_edited_message(1001, first["message"]["message_id"], "/start order-43")
    async with polling(dp, bot):
        await api.wait_sent(2)
    assert got == [("start", "order-42"), ("edited", "/start order-43")]


def test_formatting_counts_utf16_and_follows_markdown_v2_escapes():
    text, entities = format_text(
        "  😀 <b>да</b> &amp; <a href='https://x.ru/?a=1&amp;b=2'>ссылка</a> ", "HTML", None
    )
    assert text == "😀 да & ссылка"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 2},
        {"type": "text_link", "offset": 8, "length": 6, "url": "https://x.ru/?a=1&b=2"},
    ]
    text, entities = format_text(r"*Заказ* №12\.3 _готов_ \(сегодня\)", "MarkdownV2", None)
    assert text == "Заказ №12.3 готов (сегодня)"
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("bold", 0, 5),
        ("italic", 12, 5),
    ]
    with pytest.raises(ApiError, match="Can't find end of Bold entity at byte offset 0"):
        format_text("*жирный", "MarkdownV2", None)
    with pytest.raises(ApiError, match='Can\'t find end tag corresponding to start tag "b"'):
        format_text("<b>жирный", "HTML", None)

"""What the bot says, in Russian and English. Sent as plain text (no parse mode), so nothing
a customer typed can turn into markup."""

from __future__ import annotations

LANGUAGES = ("ru", "en")

_TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "greeting": (
            "Здравствуйте, {name}! Это служба поддержки. Напишите свой вопрос: бот ответит "
            "сразу, если сможет, или передаст его оператору."
        ),
        "greeting_anonymous": (
            "Здравствуйте! Это служба поддержки. Напишите свой вопрос: бот ответит сразу, "
            "если сможет, или передаст его оператору."
        ),
        "hours_open": "Мы работаем {hours}.",
        "hours_closed": "Сейчас мы не работаем; оператор ответит в рабочее время: {hours}.",
        "share_phone_hint": ("Чтобы мы узнавали вас и по телефону, нажмите «Поделиться номером»."),
        "share_phone_button": "📱 Поделиться номером",
        "call_me_button": "📞 Перезвоните мне",
        "handover_order": "Вы писали о заказе №{orders} — передаю оператору.",
        "handover_topic": "Вы писали о {topic} — передаю оператору.",
        "handover": "Передаю ваше сообщение оператору.",
        "order_status": "Заказ №{number}: {state}.",
        "order_eta": "Ожидаемая дата доставки: {eta}.",
        "order_more": "Если остались вопросы, напишите — передам оператору.",
        "phone_linked": "Спасибо! Номер {phone} сохранён.",
        "phone_not_own": "Пожалуйста, поделитесь своим номером кнопкой «Поделиться номером».",
        "phone_invalid": "Не получилось распознать номер телефона.",
        "callback_created": "Хорошо, мы перезвоним вам на номер {phone}.",
        "callback_exists": "Заявка на звонок уже принята, мы перезвоним на номер {phone}.",
        "callback_need_phone": (
            "Чтобы мы перезвонили, поделитесь номером телефона кнопкой «Поделиться номером»."
        ),
        "callback_answer": "Заявка на звонок принята",
        "survey_thanks": "Спасибо за оценку!",
        "survey_invalid": "Эта оценка не принята: кнопка устарела.",
        "private_only": "Я отвечаю только в личных сообщениях: напишите мне напрямую.",
        "send_failed_blocked": "Сообщение не доставлено: клиент заблокировал бота в Telegram.",
        "send_failed": "Сообщение не доставлено в Telegram: {error}",
    },
    "en": {
        "greeting": (
            "Hello, {name}! This is customer support. Write your question: the bot answers "
            "right away where it can, or passes it to an agent."
        ),
        "greeting_anonymous": (
            "Hello! This is customer support. Write your question: the bot answers right away "
            "where it can, or passes it to an agent."
        ),
        "hours_open": "Our hours: {hours}.",
        "hours_closed": "We are closed now; an agent will answer during business hours: {hours}.",
        "share_phone_hint": "Tap “Share my phone” so that we recognise you on the phone too.",
        "share_phone_button": "📱 Share my phone",
        "call_me_button": "📞 Call me back",
        "handover_order": "You wrote about order #{orders}; passing you to an agent.",
        "handover_topic": "You wrote about {topic}; passing you to an agent.",
        "handover": "Passing your message to an agent.",
        "order_status": "Order #{number}: {state}.",
        "order_eta": "Expected delivery date: {eta}.",
        "order_more": "If you have more questions, write here and an agent will answer.",
        "phone_linked": "Thank you! Phone number {phone} saved.",
        "phone_not_own": "Please share your own number with the “Share my phone” button.",
        "phone_invalid": "Could not read that phone number.",
        "callback_created": "All right, we will call you back at {phone}.",
        "callback_exists": "Your callback request is already in; we will call {phone}.",
        "callback_need_phone": (
            "So that we can call you back, share your phone number with the button below."
        ),
        "callback_answer": "Callback requested",
        "survey_thanks": "Thank you for your rating!",
        "survey_invalid": "This rating was not accepted: the button is out of date.",
        "private_only": "I answer in private messages only: please write to me directly.",
        "send_failed_blocked": "Message not delivered: the customer blocked the Telegram bot.",
        "send_failed": "Message not delivered to Telegram: {error}",
    },
}

_ORDER_STATES = {
    "ru": {
        "processing": "собирается на складе",
        "shipped": "передан в доставку",
        "delivered": "доставлен",
        "cancelled": "отменён",
    },
    "en": {
        "processing": "being packed at the warehouse",
        "shipped": "handed over for delivery",
        "delivered": "delivered",
        "cancelled": "cancelled",
    },
}

_TOPICS = {
    "ru": {
        "delivery": "доставке",
        "refund": "возврате денег",
        "exchange": "обмене товара",
        "size": "размере",
        "payment": "оплате",
        "invoice": "чеке или счёте",
    },
    "en": {
        "delivery": "delivery",
        "refund": "a refund",
        "exchange": "an exchange",
        "size": "sizes",
        "payment": "payment",
        "invoice": "a receipt or invoice",
    },
}


def language_of(code: str | None) -> str:
    """The bot's language for a Telegram ``language_code``: English for en*, else Russian."""
    return "en" if (code or "").lower().startswith("en") else "ru"


def text(language: str, key: str, **values: object) -> str:
    table = _TEXTS.get(language, _TEXTS["ru"])
    return table[key].format(**values) if values else table[key]


def order_state(language: str, state: str) -> str:
    return _ORDER_STATES.get(language, _ORDER_STATES["ru"]).get(state, state)


def topic(language: str, intent: str) -> str | None:
    return _TOPICS.get(language, _TOPICS["ru"]).get(intent)

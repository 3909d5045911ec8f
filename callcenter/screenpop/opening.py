"""The suggested first sentence for the agent, in the customer's language.

"Вы писали нам в Telegram о заказе №12345 — мы уже проверяем его статус."
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

CHANNEL_NAMES = {
    "ru": {"telegram": "в Telegram", "email": "на почту", "call": "по телефону"},
    "en": {"telegram": "on Telegram", "email": "by email", "call": "by phone"},
}
TEMPLATES = {
    "ru": {
        "order_promised": (
            "Вы писали нам {channel} о заказе №{order} — мы уже проверяем его статус."
        ),
        "order": "Вы писали нам {channel} о заказе №{order} — сейчас всё проверю.",
        "topic": "Вы писали нам {channel} — я вижу ваше сообщение, давайте разберёмся.",
        "none": "Здравствуйте! Чем могу помочь?",
    },
    "en": {
        "order_promised": (
            "You wrote to us {channel} about order #{order} — we are already checking it."
        ),
        "order": "You wrote to us {channel} about order #{order} — let me check it right now.",
        "topic": "You wrote to us {channel} — I can see your message, let's sort it out.",
        "none": "Hello! How can I help?",
    },
}


class _Item(Protocol):
    channel: str
    direction: str
    order_numbers: list[str]


def opening_line(language: str, timeline: Sequence[_Item], *, promised: bool) -> str:
    """A greeting that shows the customer we remember their last written message.

    ``promised``: an agent has answered their last message (we are on it already).
    """
    lang = language if language in TEMPLATES else "ru"
    texts = TEMPLATES[lang]
    written = next(
        (i for i in timeline if i.direction == "in" and i.channel in ("telegram", "email")), None
    )
    if written is None:
        return texts["none"]
    channel = CHANNEL_NAMES[lang][written.channel]
    order = next((o for i in timeline for o in i.order_numbers), None)
    if written.order_numbers:
        order = written.order_numbers[0]
    if order:
        key = "order_promised" if promised else "order"
        return texts[key].format(channel=channel, order=order)
    return texts["topic"].format(channel=channel)

"""trim_reply: quoted history and signatures go, the customer's words stay."""

from __future__ import annotations

import pytest

from callcenter.channels.email.quotes import trim_reply

REPLY = "Где мой заказ?"


@pytest.mark.parametrize(
    "history",
    [
        "On Mon, 13 May 2024 at 14:03, Shop <support@shop.example> wrote:\n> Your order shipped.",
        # Gmail wraps long attribution lines
        "On Mon, May 13, 2024 at 2:03 PM Shop Support <\nsupport@shop.example> wrote:\n\n> Hi",
        "12 мая 2024 г., в 14:03, Иван <x@y.ru> написал(а):\n\n> Текст",
        "Понедельник, 13 мая 2024, 10:00 +03:00 от Магазин <support@shop.example>:\n> Текст",
        "пн, 13 мая 2024 г. в 14:03, Магазин Ромашка <support@shop.example>:\n> Текст",
        '13.05.2024, 14:03, "Магазин" <support@shop.example>:\n> Текст',
        "13.05.2024 14:03, Магазин пишет:\n> Текст",
        "-----Original Message-----\nFrom: Shop\nSent: Monday\nTo: Ivan\nSubject: Order\n\nHi",
        "---- Исходное сообщение ----\nОт: Магазин\nТема: Заказ\n\nТекст",
        "From: Shop <support@shop.example>\nSent: Monday, May 13, 2024 2:03 PM\nTo: Ivan\n\nHi",
        "________________________________\nОт: Магазин <support@shop.example>\n"
        "Отправлено: 13 мая 2024 г. 14:03\nКому: Иван\nТема: Заказ\n\nТекст",
        "> Ваш заказ передан в доставку.\n> Служба поддержки",
    ],
)
def test_quoted_history_is_cut(history: str):
    assert trim_reply(f"{REPLY}\n\n{history}\n") == REPLY


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nИван Петров\n+7 916 000-00-00",
        "--\nIvan",
        "С уважением,\nИван Петров\nООО «Вектор»",
        "С уважением, Иван",
        "Best regards,\nJohn",
        "Отправлено с iPhone",
        "Sent from my iPhone",
        "Отправлено из мобильной Почты Mail.ru",
        "Get Outlook for Android",
    ],
)
def test_signature_is_cut(signature: str):
    assert trim_reply(f"{REPLY}\n\n{signature}\n") == REPLY


def test_signature_then_quote_both_go():
    text = f"{REPLY}\n\nSent from my iPhone\n\n> On Monday the shop wrote:\n> shipped\n"
    assert trim_reply(text) == REPLY


def test_interleaved_answers_are_kept():
    text = "> Какой цвет?\nСиний.\n> Какой размер?\nXL.\n"
    assert trim_reply(text) == text.strip()


def test_a_reply_that_is_only_a_quote_is_returned_whole():
    text = "> Ваш заказ передан в доставку.\n"
    assert trim_reply(text) == text.strip()


def test_words_like_regards_in_the_middle_of_a_long_mail_stay():
    body = "\n".join(f"Строка {n}" for n in range(10))
    text = f"Regards to the courier, he was great.\n{body}"
    assert trim_reply(text) == text


def test_crlf_text():
    assert trim_reply(f"{REPLY}\r\n\r\n-- \r\nИван\r\n") == REPLY

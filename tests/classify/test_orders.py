"""Order numbers: every cue format, and every kind of number that is not an order number."""

import pytest

from callcenter.classify import classify
from callcenter.classify.orders import extract_order_numbers


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("№12345", ("12345",)),
        ("заказ 12345", ("12345",)),
        ("заказ №12345", ("12345",)),
        ("по заказу № 12345 ничего", ("12345",)),
        ("#12345", ("12345",)),
        ("заказ#12345 где", ("12345",)),
        ("order 12345", ("12345",)),
        ("Order #12345", ("12345",)),
        ("order no. 12345", ("12345",)),
        ("order number 12345", ("12345",)),
        ("N 12345", ("12345",)),
        ("N12345", ("12345",)),
        ("номер заказа 12345", ("12345",)),
        ("№ заказа 12345, нужен чек", ("12345",)),
        ("Заказ: 12345.", ("12345",)),
        ("зказ 12345 не доставлен", ("12345",)),
        ("заказ 1234", ("1234",)),
        ("заказ 1234567890", ("1234567890",)),
        ("заказ 12345 рубашка не подошла", ("12345",)),
        # several, in order of appearance, without repeats
        ("заказы 3301, 3302 и 3303", ("3301", "3302", "3303")),
        ("order 44121 and 44120", ("44121", "44120")),
        ("заказ 555123, повторяю: заказ №555123", ("555123",)),
    ],
)
def test_order_numbers_found(text, numbers):
    assert extract_order_numbers(text) == numbers


@pytest.mark.parametrize(
    "text",
    [
        # phones
        "перезвоните +7 916 123-45-67",
        "мой номер 89161234567",
        "заказ, звонить 8 (916) 123-45-67",
        "My phone number is 07911 123456",
        # dates and times
        "заказ от 12.05.2024",
        "заказ 12.05.2024 не пришёл",
        "заказ в 12:30",
        "order 05/12/2024",
        "заказ 2024 года",
        # prices
        "заказ на 12345 руб",
        "оплатила 12345 руб",
        "заказ 12345₽",
        "заказ на 1 500 ₽",
        "order $120",
        "order 1200 USD",
        # tracking codes
        "трек RA123456789RU",
        "заказ RA123456789RU",
        "трек 80012345678901",
        "заказ 80012345678901",
        "трек №80012345",
        # card tails and other documents
        "карта *4417",
        "карта #4417",
        "оплатили по счету №4567",
        "ИНН 7701234567",
        # too short after a cue, or no cue at all
        "заказ 2 штуки",
        "номер 42",
        "12345 не пришел",
        "заказ 1234 5678",
    ],
)
def test_not_order_numbers(text):
    assert extract_order_numbers(text) == ()


def test_unicode_digits_are_not_order_numbers():
    assert extract_order_numbers("заказ ١٢٣٤٥") == ()


def test_classify_reports_order_numbers():
    assert classify("где заказ 45821? звоните 89161234567").order_numbers == ("45821",)

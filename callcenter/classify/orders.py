"""Order numbers in free text.

A number counts as an order number only after a cue: an order word ("заказ", "order",
"ордер" in any case form, with optional "№", "#", "N", "no.", "number", "номер", ":" between)
or a bare "№", "#", "N", "No." sign. Numbers joined to it by "," / "и" / "and" / "&" count too
("заказы 3301, 3302 и 3303").

The number must have 4 to 10 digits: shorter ones after a cue are quantities or sizes
("заказ 2 штуки"); 11 digits and more are phones (+7/8 and ten digits), postal trackers
(13-14) or card numbers. A candidate is rejected when it is glued to letters (RA123456789RU),
is one group of a longer spaced or punctuated number (phones 916 123-45-67, dates 12.05.2024,
times 12:30, sums 1 500), is followed by a currency or unit (руб, ₽, $, года, шт), or when the
sign cue belongs to another document ("счёт №4567", "карта #1234", "трек №...").
Digits are ASCII only, so the output is always plain digit strings.
"""

from __future__ import annotations

import re

MIN_DIGITS = 4
MAX_DIGITS = 10

_ORDER_WORD = r"(?:за?ка?з(?:а|у|ом|е|ы|ов|ам|ами|ах|ик|ика|ику)?|ордер\w{0,3}|orders?)"
_LABEL = r"(?:№|#|\bn\b|\bno\b\.?|\bnr\b\.?|\bnum\b\.?|\bnumber\b|\bномер\b|[:\-–])"
_CUE = re.compile(
    rf"(?P<word>\b{_ORDER_WORD}\b(?:\s*{_LABEL})*\s*)"
    r"|(?P<sign>(?:№|#|(?<![\w])(?-i:N)|(?<![\w])no\.)\s*)"
    r"(?=[0-9])",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"[0-9]+")
_NEXT = re.compile(r"\s*(?:,|\bи\b|\band\b|&)\s*(?:№|#)?\s*(?=[0-9])", re.IGNORECASE)
_GLUED_AFTER = re.compile(r"[^\W\d_]|[.,:/\-][0-9]|\s[0-9]|[0-9]", re.UNICODE)
_UNIT_AFTER = re.compile(
    r"\s*(?:[₽$€£%]|(?:руб(?:л[а-я]*)?|р|т\.?р|тыс(?:яч[а-я]*)?|г|год[а-я]*|гг|шт(?:ук[а-я]*)?"
    r"|кг|rub|usd|eur|pcs|lbs|kg)(?:\.|\b))",
    re.IGNORECASE,
)
_GLUED_BEFORE = re.compile(r"(?:[0-9][.,:/\-\s]?|[$€£]\s?)$")
_OTHER_DOCUMENT_BEFORE = re.compile(
    r"(?:сч[её]т\w*|накладн\w*|чек\w*|акт\w*|квитанц\w*|договор\w*|инн|карт\w*|трек\w*|"
    r"обращени\w*|тикет\w*|invoice|receipt|card|ticket|tracking|track)\s*$",
    re.IGNORECASE,
)


def _valid(text: str, start: int, end: int) -> bool:
    if not MIN_DIGITS <= end - start <= MAX_DIGITS:
        return False
    if _GLUED_AFTER.match(text, end) or _UNIT_AFTER.match(text, end):
        return False
    return not _GLUED_BEFORE.search(text, max(0, start - 3), start)


def extract_order_numbers(text: str) -> tuple[str, ...]:
    """Order numbers in order of appearance, each once."""
    found: dict[str, None] = {}
    position = 0
    while cue := _CUE.search(text, position):
        position = cue.end()
        if cue["sign"] and _OTHER_DOCUMENT_BEFORE.search(
            text, max(0, cue.start() - 40), cue.start()
        ):
            continue
        while number := _NUMBER.match(text, position):
            start, position = number.span()
            if not _valid(text, start, position):
                break
            found.setdefault(number[0])
            following = _NEXT.match(text, position)
            if not following:
                break
            position = following.end()
    return tuple(found)

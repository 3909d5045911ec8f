"""Cutting quoted history and signatures off a reply, so agents see what the customer wrote.

Only trailing quotes are cut: ">" lines interleaved with the customer's own answers stay.
When nothing would be left, the text is returned unchanged rather than shown empty.
"""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE
# "On Mon, 13 May 2024 at 14:03, Ivan <ivan@example.com> wrote:"
_ON_WROTE = re.compile(r"^\s*On\b.{0,300}\bwrote\s*:\s*$", _FLAGS)
# "13 мая 2024 г., в 14:03, Иван <x@y.ru> написал(а):", "Иван Петров пишет:"
_RU_WROTE = re.compile(r"^.{0,300}(пишет|писала?|написала?|написал\s*\(а\))\s*:\s*$", _FLAGS)
# Gmail/Yandex/Mail.ru in Russian: "пн, 13 мая 2024 г. в 14:03, Иван <ivan@ya.ru>:" (a date
# before the address is checked in code: a regex for both would backtrack quadratically)
_ADDRESS_COLON = re.compile(r"<[^<>\s@]+@[^<>\s]+>\s*:\s*$")
_DIGIT = re.compile(r"\d")
_MAX_HEADER_LINE = 600
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original message|исходное сообщение|оригинальное сообщение)\s*-{2,}\s*$", _FLAGS
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(from|от|від)\s*:\*?\s+\S", _FLAGS)
_OUTLOOK_FIELD = re.compile(
    r"^\s*\*?(sent|date|to|subject|отправлено|дата|кому|тема)\s*:\*?\s", _FLAGS
)
_UNDERSCORES = re.compile(r"^\s*_{8,}\s*$")
_QUOTED = re.compile(r"^\s*>")
_SIG_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_FOOTER = re.compile(
    r"^\s*(sent from my\b|sent from mail for windows|get outlook for\b|"
    r"отправлено (с|из|через)\b|sent with\b|с уважением,? отправлено)",
    _FLAGS,
)
_SIGN_OFF = re.compile(
    r"^\s*(с уважением|с наилучшими пожеланиями|всего (доброго|хорошего)|"
    r"best regards|kind regards|regards|best wishes|cheers)\b.{0,60}$",
    _FLAGS,
)
_SIGNATURE_MAX_LINES = 6
_FOOTER_MAX_LINES = 3


def trim_reply(text: str) -> str:
    """The reply without quoted history and signature; `text` itself when nothing remains."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[: _history_start(lines)]
    lines = _without_signature(lines)
    lines = lines[: _trailing_quote_start(lines)]
    lines = _without_signature(lines)
    trimmed = "\n".join(lines).strip()
    return trimmed or text.strip()


def _is_quote_header(line: str) -> bool:
    if len(line) > _MAX_HEADER_LINE:
        return False
    if _SEPARATOR.match(line):
        return True
    if not line.rstrip().endswith(":"):
        return False
    if _ON_WROTE.match(line) or _RU_WROTE.match(line):
        return True
    address = _ADDRESS_COLON.search(line)
    return bool(address and _DIGIT.search(line, 0, address.start()))


def _history_start(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        if _QUOTED.match(line):
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if _is_quote_header(line) or (following and _is_quote_header(f"{line} {following}")):
            return i
        if _OUTLOOK_FROM.match(line) and any(_OUTLOOK_FIELD.match(x) for x in lines[i + 1 : i + 5]):
            return i - 1 if i and _UNDERSCORES.match(lines[i - 1]) else i
    return len(lines)


def _trailing_quote_start(lines: list[str]) -> int:
    """Where the block of '>' lines (and blanks) that ends the text begins."""
    start = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        if _QUOTED.match(lines[i]):
            start = i
        elif lines[i].strip():
            break
    return start


def _without_signature(lines: list[str]) -> list[str]:
    own = [i for i, line in enumerate(lines) if line.strip()]
    for i in own[1:]:
        if _SIG_DELIMITER.match(lines[i]):
            return lines[:i]
    for i in own[-_FOOTER_MAX_LINES:]:
        if _MOBILE_FOOTER.match(lines[i]):
            lines = lines[:i]
            break
    own = [i for i, line in enumerate(lines) if line.strip()]
    for i in own[1:][-_SIGNATURE_MAX_LINES:]:
        if _SIGN_OFF.match(lines[i]):
            return lines[:i]
    return lines

"""Reading header fields defensively: raw 8-bit bytes, broken encoded words, hostile values.

The stdlib header parser has known crashes on hostile input, so every parse is guarded and falls
back to a plainer reading instead of losing the field.
"""

from __future__ import annotations

import datetime as dt
import email.header
import email.utils
import functools
import logging
import re
from email import policy
from email.message import Message

import idna

from .charsets import decode_bytes, one_line, repair_8bit

logger = logging.getLogger(__name__)

_FOLD = re.compile(r"\r?\n|\r")
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
MAX_ID_LENGTH = 998  # RFC 5322 line limit; longer "ids" are junk
MAX_MEMO_VALUE = 1000
"""Header values up to this long have their decoded form memoised (longer ones are rare)."""


def raw(msg: Message, name: str) -> str | None:
    """The first raw (undecoded, unfolded) value of a header field."""
    name = name.lower()
    for key, value in msg.raw_items():
        if isinstance(key, str) and key.lower() == name:
            return _FOLD.sub("", repair_8bit(str(value)))
    return None


def raw_all(msg: Message, name: str) -> list[str]:
    name = name.lower()
    return [
        _FOLD.sub("", repair_8bit(str(value)))
        for key, value in msg.raw_items()
        if isinstance(key, str) and key.lower() == name
    ]


@functools.lru_cache(maxsize=64)
def _header_class(name: str) -> type:
    # HeaderRegistry builds a new class on every lookup; building it once per name is faster.
    return policy.default.header_factory[name]


def _structured(name: str, value: str):
    try:
        return _header_class(name.lower())(name, value)
    except Exception:  # stdlib parser bug on a hostile value: caller falls back
        logger.debug("header parser failed on %s: %r", name, value[:200])
        return None


def decode_words(value: str) -> str:
    """RFC 2047 decoding without the structured parser, for values it chokes on."""
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            chunk = decode_bytes(chunk, charset).text
        out.append(chunk)
    return "".join(out)


def text(msg: Message, name: str) -> str:
    """A decoded single-line header value ('' when absent)."""
    value = raw(msg, name)
    if value is None:
        return ""
    decoded = _decoded_text if len(value) <= MAX_MEMO_VALUE else _decoded_text.__wrapped__
    return decoded(name.lower(), value)


@functools.lru_cache(maxsize=4096)
def _decoded_text(name: str, value: str) -> str:
    # Memoised: the stdlib's structured parser is slow, and subjects such as "Re: Ваш заказ"
    # recur.
    parsed = _structured(name, value)
    decoded = str(parsed) if parsed is not None else decode_words(value)
    if "\ufffd" in decoded and "\ufffd" not in value:  # stdlib gave up on a charset; we guess
        decoded = decode_words(value)
    return one_line(decoded)


def param(msg: Message, name: str, parameter: str) -> str | None:
    """A decoded parameter (RFC 2231 and the common RFC 2047 abuse) of a MIME header field."""
    value = raw(msg, name)
    if value is None:
        return None
    params = getattr(_structured(name, value), "params", None)
    found = params.get(parameter) if params is not None else None
    if isinstance(found, str):
        return found
    try:  # the plainer compat32 reading, for values the structured parser refused
        legacy = msg.get_param(parameter, None, header=name)
        return email.utils.collapse_rfc2231_value(legacy) if legacy is not None else None
    except Exception:
        return None


def normalise_address(address: str) -> str | None:
    """local@domain with the domain lower-cased and IDN domains in punycode (A-labels)."""
    address = one_line(address).strip("<>")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    domain = domain.strip().rstrip(".").lower()
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            logger.debug("domain %r is not valid IDNA; kept as Unicode", domain)
    return f"{local}@{domain}"


def mailboxes(msg: Message, name: str) -> list[tuple[str, str | None]]:
    """(display name, normalised address) for every mailbox in the address header(s)."""
    name, result = name.lower(), []
    for value in raw_all(msg, name):
        parse = _mailboxes_in if len(value) <= MAX_MEMO_VALUE else _mailboxes_in.__wrapped__
        result += parse(name, value)
    return result


@functools.lru_cache(maxsize=4096)
def _mailboxes_in(name: str, value: str) -> tuple[tuple[str, str | None], ...]:
    # Memoised: the structured parser is the slowest part of reading a mail, and the same
    # values come again and again (our own address in To, a customer's From).
    result: list[tuple[str, str | None]] = []
    parsed = _structured(name, value)
    addresses = getattr(parsed, "addresses", None) if parsed is not None else None
    if addresses is not None and not any("\ufffd" in a.display_name for a in addresses):
        for addr in addresses:
            spec = f"{addr.username}@{addr.domain}" if addr.domain else addr.username
            result.append((one_line(addr.display_name), normalise_address(spec)))
    else:
        # Split first, decode after: a decoded name may itself contain "," "<" or CR LF.
        for display, spec in email.utils.getaddresses([value]):
            result.append((one_line(decode_words(display)), normalise_address(spec)))
    return tuple((display, address) for display, address in result if display or address)


def message_ids(value: str | None) -> list[str]:
    """Message ids in a Message-ID/In-Reply-To/References value, without angle brackets."""
    if not value:
        return []
    found = _ANGLE_ID.findall(value) or [t for t in value.split() if "@" in t]
    ids = [one_line(i).strip("<>") for i in found]
    return [i for i in ids if i and len(i) <= MAX_ID_LENGTH]


def date(msg: Message) -> dt.datetime | None:
    """The Date header as an aware datetime (a -0000 zone is read as UTC); None if unusable."""
    value = raw(msg, "date")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(one_line(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when

"""Bytes in declared, undeclared, unknown or lying charsets turned into text, never dropped."""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass

import charset_normalizer

logger = logging.getLogger(__name__)

# What Russian-speaking senders actually use; guessing among few candidates is far more reliable
# on short texts than an open guess (an unrestricted guess takes "Привет" in cp1251 for big5).
GUESS_CANDIDATES = ["utf_8", "cp1251", "koi8_r", "cp866", "iso8859_5", "cp1252"]

# Names mailers put in charset= that Python does not know, mapped to what the sender meant.
_ALIASES: dict[str, str | None] = {
    "x-cp1251": "cp1251",
    "win-1251": "cp1251",
    "cp-1251": "cp1251",
    "x-mac-cyrillic": "mac_cyrillic",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "iso-8859-8-i": "iso8859_8",
    "unicode-1-1-utf-7": "utf_7",
    "x-unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "default": None,
}
# Text codecs that do not describe a character set (they unescape or raise on any input).
_NOT_CHARSETS = {"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode"}

_SURROGATES = re.compile("[\udc80-\udcff]")
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    charset: str
    defect: str | None = None


def codec_for(declared: str | None) -> str | None:
    """The Python codec for a declared charset name, or None when absent or unknown."""
    if not declared:
        return None
    name = declared.strip().strip("\"'").lower()
    if name in _ALIASES:
        name = _ALIASES[name] or ""
    if not name or not name.isascii():
        return None
    try:  # a real probe byte: decoding b"" succeeds without even looking the codec up
        b"a".decode(name)  # LookupError for unknown names and bytes-to-bytes codecs (hex, ...)
    except LookupError:
        return None
    except (UnicodeError, ValueError):
        pass  # a text codec that dislikes the probe byte (utf-16 wants pairs)
    canonical = codecs.lookup(name).name
    return None if canonical.replace("-", "_") in _NOT_CHARSETS else canonical


def guess_charset(data: bytes) -> str | None:
    """Best guess for undeclared 8-bit bytes: UTF-8 when valid, else charset-normalizer."""
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    for isolation in (GUESS_CANDIDATES, None):
        try:
            best = charset_normalizer.from_bytes(data, cp_isolation=isolation).best()
        except Exception:  # a guesser must never cost us the message
            logger.exception("charset-normalizer failed on %d bytes", len(data))
            best = None
        if best is not None:
            return best.encoding
    return None


def decode_bytes(data: bytes, declared: str | None) -> Decoded:
    """Decode with the declared charset; when it is unknown or wrong, guess from the bytes."""
    codec = codec_for(declared)
    defect = f"unknown charset {declared!r}" if declared and codec is None else None
    if codec is not None:
        try:  # some codecs (utf-7) can produce lone surrogates, which no database accepts
            return Decoded(_ANY_SURROGATE.sub("\ufffd", data.decode(codec)), codec)
        except Exception:  # codecs are plug-ins: any error means "not this charset"
            defect = f"bytes do not decode as declared charset {declared!r}"
    if data.isascii():
        return Decoded(data.decode("ascii"), "ascii", defect)
    guessed = guess_charset(data)
    if guessed is not None:
        try:
            return Decoded(data.decode(guessed, errors="replace"), guessed, defect)
        except Exception:
            logger.warning("guessed charset %s failed to decode", guessed)
    return Decoded(data.decode("utf-8", errors="replace"), "utf-8", defect or "undecodable bytes")


def repair_8bit(text: str) -> str:
    """Re-decode raw 8-bit bytes that the stdlib parser left as surrogate escapes."""
    if not _SURROGATES.search(text):
        return text
    try:
        data = text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # lone surrogates outside the escape range
        return _ANY_SURROGATE.sub("\ufffd", text)
    return decode_bytes(data, None).text


def one_line(text: str) -> str:
    """Header-safe text: no CR/LF or other control characters, no bidi tricks, single spaces."""
    text = repair_8bit(text)
    text = _BIDI_CONTROLS.sub("", text)
    text = _ANY_SURROGATE.sub("\ufffd", _CONTROLS.sub(" ", text))
    return _WHITESPACE.sub(" ", text).strip()

"""Normalising phone numbers, email addresses and Telegram ids into one canonical form each.

``8 (916) 123-45-67``, ``+7 916 123 45 67``, ``79161234567`` and ``9161234567`` are one number:
``+79161234567``.
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from callcenter.domain.errors import InvalidEmail, InvalidPhone, InvalidTelegram
from callcenter.models import IdentityKind

_PHONE_CHARS = re.compile(r"[\d\s()+\-.]+")
_MAX_PHONE_INPUT = 40


def normalize_phone(raw: str, region: str = "RU") -> str:
    """Return the E.164 form of ``raw`` or raise InvalidPhone."""
    text = (raw or "").strip()
    if not text or len(text) > _MAX_PHONE_INPUT or not _PHONE_CHARS.fullmatch(text):
        raise InvalidPhone(f"not a phone number: {raw!r}")
    digits = re.sub(r"\D", "", text)
    candidates = [text]
    if not text.startswith("+"):
        # "79161234567" is +7 916 ... written without the plus; "89161234567" is the
        # Russian trunk prefix 8 that phonenumbers handles through the region.
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidPhone(f"not a valid phone number: {raw!r}")


def normalize_email(raw: str) -> str:
    """The canonical lower-case ASCII form (IDN domains as punycode); InvalidEmail if none."""
    text = (raw or "").strip()
    if not text:
        raise InvalidEmail("empty email address")
    if len(text) > 320:
        raise InvalidEmail("email address is longer than 320 characters")
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"not a valid email address: {raw!r} ({exc})") from None
    local, _, _ = checked.normalized.rpartition("@")
    return f"{local.lower()}@{checked.ascii_domain.lower()}"


def normalize_telegram(raw: str | int) -> str:
    """A Telegram identity is the numeric user id; usernames change, ids do not."""
    text = str(raw).strip()
    if not text.isdigit() or not 0 < int(text) < 10**15:
        raise InvalidTelegram(f"not a Telegram user id: {raw!r}")
    return str(int(text))


def normalize(kind: IdentityKind, raw: str | int, region: str = "RU") -> str:
    """Normalise an identity value of any kind."""
    if kind is IdentityKind.PHONE:
        return normalize_phone(str(raw), region)
    if kind is IdentityKind.EMAIL:
        return normalize_email(str(raw))
    return normalize_telegram(raw)

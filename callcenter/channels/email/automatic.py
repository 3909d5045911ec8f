"""Telling machine-sent mail (auto-replies, lists, bounces) from mail a person wrote.

We must never auto-answer these (mail loops) and bounces tell us an address is dead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from . import headers
from .charsets import one_line

_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_PRESENCE_MARKERS = (
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "list-id",
    "list-unsubscribe",
)
_DAEMON_LOCALPARTS = {"mailer-daemon", "postmaster"}
_RECIPIENT_FIELD = re.compile(
    r"^(final-recipient|original-recipient|action)\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class Verdict:
    auto_submitted: bool
    reasons: tuple[str, ...]
    is_bounce: bool


def classify(msg: Message, from_address: str | None, has_delivery_status: bool) -> Verdict:
    """Why (if at all) this mail was sent by a machine, and whether it is a bounce."""
    reasons: list[str] = []
    auto = headers.text(msg, "auto-submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        reasons.append(f"auto-submitted:{auto}")
    precedence = headers.text(msg, "precedence").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        reasons.append(f"precedence:{precedence}")
    reasons += [name for name in _PRESENCE_MARKERS if headers.raw(msg, name) is not None]
    if headers.raw(msg, "return-path") is not None and headers.text(msg, "return-path") in (
        "<>",
        "",
    ):
        reasons.append("null-return-path")
    content_type = _safe_content_type(msg)
    report_type = _safe_param(msg, "report-type").lower()
    if content_type == "multipart/report":
        reasons.append(f"report:{report_type or 'unknown'}")
    localpart = (from_address or "").rpartition("@")[0].lower()
    is_bounce = (
        localpart in _DAEMON_LOCALPARTS
        or (content_type == "multipart/report" and report_type == "delivery-status")
        or has_delivery_status
    )
    if is_bounce:
        reasons.append("bounce")
    return Verdict(bool(reasons), tuple(dict.fromkeys(reasons)), is_bounce)


def failed_recipients(status_text: str) -> list[str]:
    """Addresses whose delivery failed, from the text of a message/delivery-status part."""
    failed: list[str] = []
    for block in re.split(r"\n\s*\n", status_text.replace("\r\n", "\n")):
        fields: dict[str, str] = {}
        for name, value in _RECIPIENT_FIELD.findall(block):
            fields.setdefault(name.lower(), one_line(value))
        recipient = fields.get("final-recipient") or fields.get("original-recipient")
        action = fields.get("action", "failed").lower()
        if recipient and action.startswith("failed"):
            address = headers.normalise_address(recipient.rpartition(";")[2])
            if address:
                failed.append(address)
    return failed


def _safe_content_type(msg: Message) -> str:
    try:
        return msg.get_content_type()
    except Exception:  # stdlib parser bug on a hostile Content-Type
        return "text/plain"


def _safe_param(msg: Message, name: str) -> str:
    try:
        value = msg.get_param(name)
    except Exception:
        return ""
    return one_line(value) if isinstance(value, str) else ""

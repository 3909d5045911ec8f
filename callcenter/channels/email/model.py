"""What parsing an email produces."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


class EmailRejected(ValueError):
    """Input that is not an email at all; `reason` is a stable machine id."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytes | None  # None when skipped, see skipped_reason
    content_id: str | None = None  # without <>, for inline images referenced as cid:
    skipped_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """One inbound email, decoded. Header-derived text never contains CR, LF or controls.

    Addresses are local@domain with the domain lower-cased and IDN domains in punycode
    (xn--...), so the same mailbox always compares equal; the local part keeps its case.
    """

    message_id: str
    message_id_synthesised: bool
    in_reply_to: str | None
    references: tuple[str, ...]
    date: dt.datetime | None
    from_name: str
    from_address: str | None
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str  # text/plain parts, or text derived from HTML when there is none
    text_from_html: bool
    text_trimmed: str  # text without quoted history and signature
    text_charset: str | None
    html: str | None  # as received: never render it, render html_sanitized
    html_charset: str | None
    html_sanitized: str | None
    has_remote_images: bool
    attachments: tuple[Attachment, ...]
    inline_images: tuple[Attachment, ...]
    auto_submitted: bool
    auto_reasons: tuple[str, ...]
    is_bounce: bool
    failed_recipients: tuple[str, ...]
    defects: tuple[str, ...]

"""parse_email: raw RFC 5322 bytes in; a ParsedEmail or EmailRejected out, never another error."""

from __future__ import annotations

import email
import hashlib
import json
import logging
from email import policy
from email.message import Message

from . import automatic, headers, mime
from .model import Attachment, EmailRejected, ParsedEmail
from .quotes import trim_reply
from .sanitize import html_to_text, sanitize_html

__all__ = ["Attachment", "EmailRejected", "ParsedEmail", "parse_email"]

logger = logging.getLogger(__name__)


def parse_email(raw: bytes, *, max_attachment_bytes: int = 10 * 2**20) -> ParsedEmail:
    """Decode one email. Malformed mail yields what is recoverable, with `defects` saying why.

    Raises EmailRejected only for input that is not an email (reason "not-bytes", "empty",
    "no-headers") or, should the stdlib parser crash in a way not yet guarded, "parser-failure".
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise EmailRejected("not-bytes", type(raw).__name__)
    data = bytes(raw)
    if not data.strip():
        raise EmailRejected("empty", "no bytes besides whitespace")
    try:
        return _parse(data, max_attachment_bytes)
    except EmailRejected:
        raise
    except Exception as exc:
        logger.exception("email parser failed on %d bytes", len(data))
        raise EmailRejected("parser-failure", f"{type(exc).__name__}: {exc}") from exc


def _message(data: bytes) -> Message:
    """The MIME tree. compat32 keeps header values raw and parses them only on demand, which is
    several times faster than policy.default; headers.py decodes the few fields we read."""
    return email.message_from_bytes(data, policy=policy.compat32)


def _parse(data: bytes, limit: int) -> ParsedEmail:
    msg = _message(data)
    if not msg.keys():
        raise EmailRejected("no-headers", "no header fields found")
    parts = mime.collect(msg, limit)
    senders = headers.mailboxes(msg, "from") or headers.mailboxes(msg, "sender")
    from_name, from_address = senders[0] if senders else ("", None)
    html = "\n".join(d.text for d in parts.htmls) if parts.htmls else None
    html_sanitized, has_remote_images = sanitize_html(html) if html is not None else (None, False)
    text = "\n".join(d.text for d in parts.texts)
    text_from_html = not parts.texts and html is not None
    if text_from_html:
        text = html_to_text(html or "")
    failed = [r for status in parts.delivery_status for r in automatic.failed_recipients(status)]
    for value in headers.raw_all(msg, "x-failed-recipients"):
        failed += filter(None, (headers.normalise_address(a) for a in value.split(",")))
    verdict = automatic.classify(msg, from_address, bool(parts.delivery_status))
    ids = headers.message_ids(headers.raw(msg, "message-id"))
    in_reply_to = headers.message_ids(headers.raw(msg, "in-reply-to"))
    fields = {
        "in_reply_to": in_reply_to[0] if in_reply_to else None,
        "references": tuple(headers.message_ids(" ".join(headers.raw_all(msg, "references")))),
        "date": headers.date(msg),
        "from_name": from_name,
        "from_address": from_address,
        "reply_to": _addresses(msg, "reply-to"),
        "to": _addresses(msg, "to"),
        "cc": _addresses(msg, "cc"),
        "subject": headers.text(msg, "subject"),
        "text": text,
        "text_from_html": text_from_html,
        "text_trimmed": trim_reply(text),
        "text_charset": parts.texts[0].charset if parts.texts else None,
        "html": html,
        "html_charset": parts.htmls[0].charset if parts.htmls else None,
        "html_sanitized": html_sanitized,
        "has_remote_images": has_remote_images,
        "attachments": tuple(parts.attachments),
        "inline_images": tuple(parts.inline_images),
        "auto_submitted": verdict.auto_submitted,
        "auto_reasons": verdict.reasons,
        "is_bounce": verdict.is_bounce,
        "failed_recipients": tuple(dict.fromkeys(failed)),
        "defects": tuple(dict.fromkeys(parts.defects)),
    }
    if ids:
        return ParsedEmail(message_id=ids[0], message_id_synthesised=False, **fields)
    return ParsedEmail(message_id=_content_id(fields), message_id_synthesised=True, **fields)


def _addresses(msg: Message, name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for _, a in headers.mailboxes(msg, name) if a))


def _content_id(fields: dict) -> str:
    """A stable id for mail without Message-ID: the same content always gets the same id.

    Built from what the sender wrote, not from transport headers, so the same mail fetched
    twice (or delivered to two of our mailboxes) is recognised as one.
    """
    basis = {
        key: fields[key]
        for key in ("from_address", "to", "cc", "subject", "in_reply_to", "text", "html")
    }
    basis["date"] = fields["date"].isoformat() if fields["date"] else None
    basis["attachments"] = [a.sha256 for a in fields["attachments"] + fields["inline_images"]]
    digest = hashlib.sha256(json.dumps(basis, sort_keys=True).encode())
    return f"sha256:{digest.hexdigest()}"

"""Walking the MIME tree: body texts, attachments, inline images and delivery reports.

Every accessor is guarded: the stdlib raises on some hostile parts, and one bad part must not
cost the rest of the message.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from dataclasses import dataclass, field
from email import policy
from email.message import Message

from . import headers
from .charsets import Decoded, decode_bytes, one_line
from .model import Attachment

logger = logging.getLogger(__name__)

MAX_DEPTH = 40
MAX_FILENAME = 200


@dataclass
class Parts:
    texts: list[Decoded] = field(default_factory=list)
    htmls: list[Decoded] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    inline_images: list[Attachment] = field(default_factory=list)
    delivery_status: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def collect(msg: Message, max_attachment_bytes: int) -> Parts:
    """Everything of interest in the message, in document order."""
    parts = Parts()
    _visit(msg, parts, 0, max_attachment_bytes)
    return parts


def _visit(part: Message, parts: Parts, depth: int, limit: int) -> None:
    _note_defects(part, parts)
    if depth > MAX_DEPTH:
        parts.defects.append(f"MIME nesting deeper than {MAX_DEPTH}; inner parts ignored")
        return
    ctype = content_type(part)
    payload = part.get_payload() if part.is_multipart() else _raw_payload(part)
    if ctype == "message/delivery-status":
        parts.delivery_status.append(_status_text(payload))
    elif isinstance(payload, list) and ctype.startswith("message/"):
        parts.attachments.append(_embedded_message(part, payload, parts, limit))
    elif isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                _visit(sub, parts, depth + 1, limit)
    else:
        _leaf(part, ctype, parts, limit)


def _leaf(part: Message, ctype: str, parts: Parts, limit: int) -> None:
    data = _payload_bytes(part, parts)
    disposition = _guard(part.get_content_disposition, None)
    filename = _filename(part)
    if ctype.startswith("multipart/"):  # no usable boundary: the body is all we have
        parts.defects.append(f"{ctype} without parts read as text")
        ctype = "text/plain"
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        charset = _guard(lambda: part.get_param("charset"), None)
        decoded = decode_bytes(data, charset if isinstance(charset, str) else None)
        if decoded.defect:
            parts.defects.append(f"{ctype}: {decoded.defect}; read as {decoded.charset}")
        text = decoded.text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
        target = parts.texts if ctype == "text/plain" else parts.htmls
        target.append(Decoded(text, decoded.charset, decoded.defect))
        return
    cid = _content_id(part)
    if ctype.startswith("image/") and cid and disposition != "attachment":
        parts.inline_images.append(_attachment(data, ctype, filename, cid, parts, limit))
    else:
        parts.attachments.append(_attachment(data, ctype, filename, None, parts, limit))


def _attachment(
    data: bytes, ctype: str, filename: str | None, cid: str | None, parts: Parts, limit: int
) -> Attachment:
    number = len(parts.attachments) + len(parts.inline_images) + 1
    if not filename:
        extension = ".eml" if ctype.startswith("message/") else mimetypes.guess_extension(ctype)
        filename = f"attachment-{number}{extension or '.bin'}"
    skipped = f"larger than {limit} bytes" if len(data) > limit else None
    return Attachment(
        filename=filename,
        content_type=ctype,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=None if skipped else data,
        content_id=cid,
        skipped_reason=skipped,
    )


def _embedded_message(part: Message, payload: list, parts: Parts, limit: int) -> Attachment:
    """A forwarded message/rfc822 stays one .eml attachment; its text is not our body."""
    data = b""
    inner = payload[0] if payload and isinstance(payload[0], Message) else None
    for serialising_policy in (policy.default, policy.compat32):
        try:
            data = inner.as_bytes(policy=serialising_policy) if inner is not None else b""
            break
        except Exception:
            continue
    else:
        parts.defects.append("embedded message could not be serialised")
    subject = headers.text(inner, "subject") if inner is not None else ""
    filename = _filename(part) or (f"{_safe_filename(subject)}.eml" if subject else None)
    return _attachment(data, content_type(part), filename, None, parts, limit)


def _content_id(part: Message) -> str | None:
    """The Content-ID without <>; some mailers omit the brackets or the @."""
    value = headers.raw(part, "content-id")
    if not value:
        return None
    ids = headers.message_ids(value)
    return ids[0] if ids else (one_line(value).strip("<> ") or None)


def _status_text(payload: object) -> str:
    """The text of a delivery-status part, whether the parser split it into blocks or not."""
    if isinstance(payload, list):
        blocks = [
            "\n".join(f"{key}: {value}" for key, value in block.raw_items())
            for block in payload
            if isinstance(block, Message)
        ]
        return "\n\n".join(blocks)
    return payload if isinstance(payload, str) else ""


def content_type(part: Message) -> str:
    return _guard(part.get_content_type, "application/octet-stream")


def _payload_bytes(part: Message, parts: Parts) -> bytes:
    data = _guard(lambda: part.get_payload(decode=True), None)
    if isinstance(data, bytes):
        return data
    raw = _raw_payload(part)
    parts.defects.append("undecodable transfer encoding; kept the raw payload")
    return raw.encode("utf-8", "surrogateescape")


def _raw_payload(part: Message) -> str:
    """The undecoded payload text; get_payload() itself can raise on a hostile charset."""
    payload = _guard(part.get_payload, None)
    if payload is None:
        payload = getattr(part, "_payload", "")  # the parser's own copy, so nothing is lost
    return payload if isinstance(payload, str) else ""


def _filename(part: Message) -> str | None:
    name = headers.param(part, "content-disposition", "filename") or headers.param(
        part, "content-type", "name"
    )
    return _safe_filename(name) if name else None


def _safe_filename(name: str) -> str | None:
    """A display-safe file name: no path, no control or bidi characters, bounded length."""
    name = one_line(headers.decode_words(name)).replace("\\", "/").rpartition("/")[2].strip()
    if len(name) > MAX_FILENAME:
        _, dot, extension = name.rpartition(".")
        keep = extension if dot and len(extension) <= 10 else ""
        name = name[: MAX_FILENAME - len(keep) - 1] + ("." + keep if keep else "")
    return name if name.strip(".") else None


def _note_defects(part: Message, parts: Parts) -> None:
    for defect in getattr(part, "defects", ()):
        name, detail = type(defect).__name__, str(defect)
        parts.defects.append(f"{name}: {detail}" if detail else name)


def _guard(call, default):
    try:
        return call()
    except Exception:  # stdlib crashes on some hostile parameters; keep going
        logger.debug("MIME accessor %r failed", call, exc_info=True)
        return default

"""Building the MIME message for one outbox row: layout templates, threading headers, and
header values that can never carry a line break.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from importlib import resources

import jinja2
import nh3
from markupsafe import Markup, escape

from callcenter.channels.email.charsets import one_line
from callcenter.channels.email.threading import is_header_safe_id

LANGUAGES = ("ru", "en")
MAX_SUBJECT = 250
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class InvalidAddress(ValueError):
    """An address that no header (or SMTP server) could take."""


@dataclass(frozen=True)
class Draft:
    """Everything the message is made of, already decided."""

    message_id: str
    sender: str
    """The From value as configured, e.g. ``Магазин <support@shop.example>``."""
    to: str
    to_name: str
    subject: str
    text: str
    html: str | None
    language: str
    ticket_id: int | None
    automatic: bool
    in_reply_to: str | None
    references: tuple[str, ...]
    date: datetime


def clean_header(value: str, limit: int = MAX_SUBJECT) -> str:
    """Customer text made safe for a header: CR, LF and controls become spaces."""
    return one_line(value or "")[:limit]


def address(name: str, addr_spec: str) -> Address:
    """A header-safe mailbox; InvalidAddress when the address itself is unusable."""
    spec = clean_header(addr_spec, 320)
    if spec != (addr_spec or "").strip() or spec.count("@") != 1:
        raise InvalidAddress(f"not a usable email address: {addr_spec!r}")
    try:
        return Address(display_name=clean_header(name, 200), addr_spec=spec)
    except (ValueError, IndexError) as exc:
        raise InvalidAddress(f"not a usable email address: {addr_spec!r} ({exc})") from None


@functools.cache
def _layouts() -> dict[str, dict[str, str]]:
    source = resources.files("callcenter.channels.email").joinpath("templates/reply.toml")
    return tomllib.loads(source.read_text(encoding="utf-8"))


@functools.cache
def _template(language: str, part: str) -> jinja2.Template:
    environment = jinja2.Environment(
        autoescape=part == "html",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=False,
    )
    return environment.from_string(_layouts()[language][part].strip())


def _paragraphs(text: str) -> list[Markup]:
    return [
        Markup("<br>\n").join(escape(line) for line in block.strip().split("\n"))
        for block in _PARAGRAPH_BREAK.split(text.strip())
        if block.strip()
    ]


def render(draft: Draft) -> tuple[str, str]:
    """(plain text, HTML) in the draft's language; agents' replies get the ticket footer."""
    language = draft.language if draft.language in LANGUAGES else LANGUAGES[0]
    variables = {
        "body": draft.text.strip(),
        "body_html": Markup(nh3.clean(draft.html)) if draft.html else None,
        "paragraphs": _paragraphs(draft.text),
        "ticket_id": draft.ticket_id,
        "sender": parseaddr(draft.sender)[0],
        "subject": draft.subject,
        "footer": not draft.automatic,
    }
    text = _template(language, "text").render(variables).strip() + "\n"
    html = _template(language, "html").render(variables).strip() + "\n"
    return text, html


def build_message(draft: Draft) -> bytes:
    """The message as it goes out (CRLF, ready for SMTP): multipart/alternative, text first."""
    name, sender_address = parseaddr(draft.sender)
    message = EmailMessage(policy=SMTP)
    message["From"] = address(name, sender_address)
    message["To"] = address(draft.to_name, draft.to)
    message["Subject"] = clean_header(draft.subject) or "(no subject)"
    message["Date"] = format_datetime(draft.date)
    message["Message-ID"] = f"<{draft.message_id}>"
    if draft.automatic:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    if draft.ticket_id is not None:
        message["X-Callcenter-Ticket"] = str(draft.ticket_id)
    text, html = render(draft)
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return _threading_headers(draft) + message.as_bytes()


def _threading_headers(draft: Draft) -> bytes:
    """In-Reply-To and References, folded by hand one id per line.

    The stdlib folds a long run of ids as RFC 2047 encoded words, which no mail client reads
    as ids any more; these values are plain ASCII ids and need no encoding at all.
    """
    lines = []
    if draft.in_reply_to and is_header_safe_id(draft.in_reply_to):
        lines.append(f"In-Reply-To: <{draft.in_reply_to}>\r\n")
    references = [f"<{r}>" for r in draft.references if is_header_safe_id(r)]
    if references:
        lines.append("References: " + "\r\n ".join(references) + "\r\n")
    return "".join(lines).encode("ascii")

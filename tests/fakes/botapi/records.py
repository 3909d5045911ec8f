"""What the fake remembers for tests to assert on: calls, sent messages, scripted faults."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One request the bot made, in arrival order.

    `params` holds the arguments as received: strings for form and multipart requests
    (aiogram's way), native values for JSON bodies.
    """

    method: str
    params: dict[str, Any]
    status: int = 0
    description: str | None = None
    via_webhook_reply: bool = False
    at: float = field(default_factory=time.monotonic)

    def int(self, name: str) -> int | None:
        value = self.params.get(name)
        return None if value is None or value == "" else int(value)

    def json(self, name: str) -> Any:
        value = self.params.get(name)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class SentMessage:
    """A message the bot sent or edited, as the recipient sees it."""

    method: str
    chat_id: int
    message_id: int
    text: str | None
    source_text: str | None
    parse_mode: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    reply_to_message_id: int | None
    message: dict[str, Any]
    file: bytes | None = None

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        """Keyboard rows, inline or reply, empty when there is no keyboard."""
        markup = self.reply_markup or {}
        return markup.get("inline_keyboard") or markup.get("keyboard") or []


@dataclass
class Fault:
    """A scripted failure for the next `count` calls of a method ('*' for any)."""

    method: str
    status: int | None
    description: str | None
    retry_after: int | None
    count: int
    delay: float = 0.0
    lost_response: bool = False
    body: str | None = None

    def matches(self, method: str) -> bool:
        return self.count > 0 and self.method in {"*", method.lower()}

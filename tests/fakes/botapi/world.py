"""Users, chats and messages the fake server knows, shaped as Bot API objects."""

from __future__ import annotations

import copy
import time
from typing import Any

from .errors import bad_request
from .files import FileStore

DEFAULT_USER = {"is_bot": False, "first_name": "Иван", "last_name": "Петров", "language_code": "ru"}
DEFAULT_GROUP_MEMBER_ID = 100_500
_PRIVATE_CHAT_FIELDS = ("first_name", "last_name", "username")


def now() -> int:
    return int(time.time())


class World:
    def __init__(self, bot: dict[str, Any]) -> None:
        self.bot = bot
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.files = FileStore()
        self.blocked: set[int] = set()
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self._last_message_id: dict[int, int] = {}

    # --- users and chats -----------------------------------------------------------------

    def user(self, chat_id: int, chat_type: str, given: dict[str, Any] | None) -> dict[str, Any]:
        """A user: the test's fields over defaults; in a private chat the id is the chat id."""
        default_id = chat_id if chat_type == "private" else DEFAULT_GROUP_MEMBER_ID
        return {"id": default_id, **DEFAULT_USER, **(given or {})}

    def chat(
        self,
        chat_id: int,
        chat_type: str = "private",
        user: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """The chat, created on first sight; a private chat mirrors its user's name."""
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = {"id": chat_id, "type": chat_type}
            if chat_type != "private":
                chat["title"] = "Тестовая группа"
            self.chats[chat_id] = chat
        if chat["type"] == "private" and user is not None:
            for name in _PRIVATE_CHAT_FIELDS:
                if name in user:
                    chat[name] = user[name]
        chat.update(fields)
        return chat

    def resolve_chat(self, raw: Any) -> dict[str, Any]:
        """chat_id argument -> known chat, failing like the server for unknown ones."""
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        text = str(raw).strip()
        if text.startswith("@"):
            for chat in self.chats.values():
                if chat.get("username", "").lower() == text[1:].lower():
                    return chat
            raise bad_request("chat not found")
        try:
            chat_id = int(text)
        except ValueError:
            raise bad_request("chat not found") from None
        if chat_id not in self.chats:
            raise bad_request("chat not found")
        return self.chats[chat_id]

    # --- messages -------------------------------------------------------------------------

    def new_message(
        self,
        chat: dict[str, Any],
        sender: dict[str, Any],
        reply_to: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Store a message with the chat's next message_id."""
        message_id = self._last_message_id.get(chat["id"], 0) + 1
        self._last_message_id[chat["id"]] = message_id
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": copy.deepcopy(sender),
            "chat": copy.deepcopy(chat),
            "date": now(),
        }
        if reply_to is not None:
            message["reply_to_message"] = self.snapshot(reply_to)
        message.update({key: value for key, value in fields.items() if value is not None})
        self.messages[(chat["id"], message_id)] = message
        return copy.deepcopy(message)

    def message(self, chat_id: int, message_id: int | None) -> dict[str, Any] | None:
        if message_id is None:
            return None
        return self.messages.get((chat_id, message_id))

    def last_bot_message(self, chat_id: int) -> dict[str, Any] | None:
        mine = [
            m
            for (cid, _), m in self.messages.items()
            if cid == chat_id and m["from"]["id"] == self.bot["id"]
        ]
        return max(mine, key=lambda m: m["message_id"]) if mine else None

    @staticmethod
    def snapshot(message: dict[str, Any]) -> dict[str, Any]:
        """A message as embedded in another one: replies are not nested twice."""
        embedded = copy.deepcopy(message)
        embedded.pop("reply_to_message", None)
        return embedded

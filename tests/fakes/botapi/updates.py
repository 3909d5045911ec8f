"""The bot's update queue: offsets, allowed_updates and long polling like the real server."""

from __future__ import annotations

import asyncio
from typing import Any

UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
DEFAULT_ALLOWED = frozenset(UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
FIRST_UPDATE_ID = 590_000_001
LONG_POLL_MAX_TIMEOUT = 50


def update_type(update: dict[str, Any]) -> str | None:
    return next((key for key in update if key in UPDATE_TYPES), None)


class PollAborted(Exception):
    """A waiting getUpdates was ended by a newer getUpdates or by setWebhook."""

    def __init__(self, by: str) -> None:
        super().__init__(by)
        self.by = by


class UpdateQueue:
    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] = []
        self._next_id = FIRST_UPDATE_ID
        self.allowed: frozenset[str] = DEFAULT_ALLOWED
        self.arrived = asyncio.Event()
        self._poll: asyncio.Future[str] | None = None
        self.closing = False

    def __len__(self) -> int:
        return len(self._pending)

    def push(self, update: dict[str, Any], keep_id: bool = False) -> dict[str, Any] | None:
        """Queue an update; None when allowed_updates filters it out, as the server does."""
        kind = update_type(update)
        if kind is not None and kind not in self.allowed:
            return None
        body = {key: value for key, value in update.items() if key != "update_id"}
        if keep_id and isinstance(update.get("update_id"), int):
            update_id = update["update_id"]
            self._next_id = max(self._next_id, update_id + 1)
        else:
            update_id = self._next_id
            self._next_id += 1
        queued = {"update_id": update_id, **body}
        self._pending.append(queued)
        self.arrived.set()
        self._wake("update")
        return queued

    def set_allowed(self, requested: Any) -> None:
        """allowed_updates: absent keeps the setting, empty (or nothing known) means the default."""
        if not isinstance(requested, list):
            return
        known = frozenset(kind for kind in requested if kind in UPDATE_TYPES)
        self.allowed = known or DEFAULT_ALLOWED

    def confirm(self, offset: int) -> None:
        """Apply a getUpdates offset: forget every update before it."""
        if offset < 0:
            self._pending = self._pending[offset:]
        elif offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]

    def head(self, limit: int) -> list[dict[str, Any]]:
        return list(self._pending[:limit])

    def remove(self, update: dict[str, Any]) -> None:
        """Forget one update (delivered by webhook)."""
        self._pending = [u for u in self._pending if u is not update]

    def clear(self) -> None:
        self._pending.clear()

    def abort_poll(self, by: str) -> None:
        self._wake(by)

    async def wait(self, timeout: float) -> None:
        """Long-poll until an update arrives or `timeout` passes; a newer poll aborts this one."""
        self._wake("getUpdates")
        poll: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._poll = poll
        try:
            reason = await asyncio.wait_for(poll, timeout)
        except TimeoutError:
            return
        finally:
            if self._poll is poll:
                self._poll = None
        if reason in {"getUpdates", "setWebhook"}:
            raise PollAborted(reason)

    def _wake(self, reason: str) -> None:
        if self._poll is not None and not self._poll.done():
            self._poll.set_result(reason)

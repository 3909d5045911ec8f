"""The Bot API methods the fake implements, with the real server's checks and wording."""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request, forbidden
from .files import MAX_DOWNLOAD_SIZE
from .formatting import format_text, u16
from .params import Params
from .records import SentMessage
from .updates import LONG_POLL_MAX_TIMEOUT, PollAborted, UpdateQueue
from .webhook import Webhook
from .world import World, now

logger = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024
CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
INLINE_BUTTON_KINDS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
GET_ME_EXTRAS = {
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
}
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


@dataclass
class Ok:
    """A successful result, with the optional description some methods add."""

    result: Any
    description: str | None = None


Handler = Callable[[Params], Awaitable[Ok]]


class Methods:
    """Method name (lower case, as the server matches it) -> implementation."""

    def __init__(self, world: World, queue: UpdateQueue, webhook: Webhook) -> None:
        self.world = world
        self.queue = queue
        self.webhook = webhook
        self.sent: list[SentMessage] = []
        self.edits: list[SentMessage] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        self.on_change: Callable[[], None] = lambda: None
        self.table: dict[str, Handler] = {
            "getme": self.get_me,
            "getupdates": self.get_updates,
            "setwebhook": self.set_webhook,
            "deletewebhook": self.delete_webhook,
            "getwebhookinfo": self.get_webhook_info,
            "sendmessage": self.send_message,
            "editmessagetext": self.edit_message_text,
            "editmessagereplymarkup": self.edit_message_reply_markup,
            "deletemessage": self.delete_message,
            "answercallbackquery": self.answer_callback_query,
            "sendchataction": self.send_chat_action,
            "sendphoto": self.send_photo,
            "senddocument": self.send_document,
            "getfile": self.get_file,
            "getchat": self.get_chat,
            "setmycommands": self.set_my_commands,
            "getmycommands": self.get_my_commands,
            "deletemycommands": self.delete_my_commands,
        }

    # --- updates and webhooks ----------------------------------------------------------------

    async def get_me(self, p: Params) -> Ok:
        return Ok({**copy.deepcopy(self.world.bot), **GET_ME_EXTRAS})

    async def get_updates(self, p: Params) -> Ok:
        if self.webhook.url:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = p.int("offset", 0) or 0
        limit = min(max(p.int("limit", 100) or 100, 1), 100)
        timeout = min(max(p.int("timeout", 0) or 0, 0), LONG_POLL_MAX_TIMEOUT)
        self.queue.set_allowed(p.json("allowed_updates"))
        self.queue.confirm(offset)
        if not len(self.queue) and timeout and not self.queue.closing:
            try:
                await self.queue.wait(timeout)
            except PollAborted as aborted:
                if aborted.by == "setWebhook":
                    raise ApiError(409, "Conflict: terminated by setWebhook request") from None
                raise ApiError(409, POLL_CONFLICT) from None
        return Ok(self.queue.head(limit))

    async def set_webhook(self, p: Params) -> Ok:
        url = p.str("url") or ""
        if not url:
            return await self.delete_webhook(p)
        secret = p.str("secret_token") or ""
        if len(secret) > 256:
            raise bad_request("secret token is too long")
        if not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret):
            raise bad_request("secret token contains unallowed characters")
        if p.bool("drop_pending_updates"):
            self.queue.clear()
        self.queue.set_allowed(p.json("allowed_updates"))
        if url == self.webhook.url and secret == self.webhook.secret_token:
            return Ok(True, "Webhook is already set")
        self.webhook.check_rate()
        await self.webhook.verify(url)
        self.queue.abort_poll("setWebhook")
        await self.webhook.start(url, secret, p.int("max_connections", 40) or 40)
        return Ok(True, "Webhook was set")

    async def delete_webhook(self, p: Params) -> Ok:
        if p.bool("drop_pending_updates"):
            self.queue.clear()
        was_set = bool(self.webhook.url)
        await self.webhook.stop()
        return Ok(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def get_webhook_info(self, p: Params) -> Ok:
        return Ok(self.webhook.info(len(self.queue), self.queue.allowed))

    # --- messages ------------------------------------------------------------------------

    async def send_message(self, p: Params) -> Ok:
        chat = self._target_chat(p)
        text = p.str("text") or ""
        if not text:
            raise bad_request("message text is empty")
        plain, entities = format_text(text, p.str("parse_mode"), p.json("entities"))
        if not plain:
            raise bad_request("message text is empty")
        if u16(plain) > MAX_TEXT:
            raise bad_request("message is too long")
        return self._deliver(
            "sendMessage", p, chat, {"text": plain, "entities": entities or None}, text
        )

    async def send_photo(self, p: Params) -> Ok:
        chat = self._target_chat(p)
        upload = p.upload("photo")
        if upload is not None:
            sizes = self.world.files.photo_sizes(upload.data)
            if sizes is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            data = upload.data
        else:
            stored = self._existing_file(p.str("photo"))
            sizes = self.world.files.photo_sizes(stored.data) or [self._file_fields(stored)]
            data = stored.data
        fields = {"photo": sizes, **self._caption(p)}
        return self._deliver("sendPhoto", p, chat, fields, p.str("caption"), data)

    async def send_document(self, p: Params) -> Ok:
        chat = self._target_chat(p)
        upload = p.upload("document")
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            stored = self.world.files.add(
                upload.data, "documents", upload.filename, upload.content_type
            )
        else:
            stored = self._existing_file(p.str("document"))
        document = self._file_fields(stored)
        if stored.file_name:
            document["file_name"] = stored.file_name
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        fields = {"document": document, **self._caption(p)}
        return self._deliver("sendDocument", p, chat, fields, p.str("caption"), stored.data)

    async def edit_message_text(self, p: Params) -> Ok:
        chat, message = self._editable(p)
        text = p.str("text") or ""
        if not text:
            raise bad_request("message text is empty")
        plain, entities = format_text(text, p.str("parse_mode"), p.json("entities"))
        if not plain:
            raise bad_request("message text is empty")
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        markup = self._reply_markup(p, chat)
        inline = markup if markup and "inline_keyboard" in markup else None
        unchanged = (
            message.get("text") == plain
            and message.get("entities", []) == entities
            and message.get("reply_markup") == inline
        )
        if unchanged:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.update(text=plain, edit_date=now())
        _set_or_drop(message, "entities", entities or None)
        _set_or_drop(message, "reply_markup", inline)
        result = copy.deepcopy(message)
        self.edits.append(self._record("editMessageText", p, chat, result, text))
        self.on_change()
        return Ok(result)

    async def edit_message_reply_markup(self, p: Params) -> Ok:
        chat, message = self._editable(p)
        markup = self._reply_markup(p, chat)
        inline = markup if markup and "inline_keyboard" in markup else None
        if message.get("reply_markup") == inline:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message["edit_date"] = now()
        _set_or_drop(message, "reply_markup", inline)
        result = copy.deepcopy(message)
        self.edits.append(self._record("editMessageReplyMarkup", p, chat, result, None))
        self.on_change()
        return Ok(result)

    async def delete_message(self, p: Params) -> Ok:
        chat = self._target_chat(p)
        key = (chat["id"], p.int("message_id") or 0)
        if key not in self.world.messages:
            raise bad_request("message to delete not found")
        del self.world.messages[key]
        return Ok(True)

    async def answer_callback_query(self, p: Params) -> Ok:
        query_id = p.str("callback_query_id") or ""
        query = self.world.callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        query["answered"] = True
        answer = {
            "callback_query_id": query_id,
            "text": p.str("text"),
            "show_alert": p.bool("show_alert"),
            "url": p.str("url"),
        }
        self.callback_answers.append(answer)
        self.on_change()
        return Ok(True)

    async def send_chat_action(self, p: Params) -> Ok:
        self._target_chat(p)
        if p.str("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return Ok(True)

    async def get_file(self, p: Params) -> Ok:
        stored = self.world.files.get(p.str("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_SIZE:
            raise bad_request("file is too big")
        self.world.files.assign_path(stored)
        return Ok(stored.as_file())

    async def get_chat(self, p: Params) -> Ok:
        chat = copy.deepcopy(self.world.resolve_chat(p.raw.get("chat_id")))
        chat.setdefault("accent_color_id", 0)
        chat.setdefault("max_reaction_count", 11)
        return Ok(chat)

    async def set_my_commands(self, p: Params) -> Ok:
        commands = p.json("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        self.commands = commands
        return Ok(True)

    async def get_my_commands(self, p: Params) -> Ok:
        return Ok(copy.deepcopy(self.commands))

    async def delete_my_commands(self, p: Params) -> Ok:
        self.commands = []
        return Ok(True)

    # --- helpers -----------------------------------------------------------------------------

    def _target_chat(self, p: Params) -> dict[str, Any]:
        chat = self.world.resolve_chat(p.raw.get("chat_id"))
        if chat["id"] in self.world.blocked:
            raise forbidden(_blocked_reason(chat["type"]))
        return chat

    def _editable(self, p: Params) -> tuple[dict[str, Any], dict[str, Any]]:
        if p.has("inline_message_id"):
            raise bad_request("message to edit not found")
        chat = self._target_chat(p)
        message = self.world.message(chat["id"], p.int("message_id"))
        if message is None:
            raise bad_request("message to edit not found")
        if message["from"]["id"] != self.world.bot["id"]:
            raise bad_request("message can't be edited")
        return chat, message

    def _existing_file(self, file_id: str | None) -> Any:
        if not file_id:
            raise bad_request("there is no file in the request")
        if file_id.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")
        stored = self.world.files.get(file_id)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored

    @staticmethod
    def _file_fields(stored: Any) -> dict[str, Any]:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }

    def _caption(self, p: Params) -> dict[str, Any]:
        caption = p.str("caption") or ""
        if not caption:
            return {}
        plain, entities = format_text(caption, p.str("parse_mode"), p.json("caption_entities"))
        if u16(plain) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        return {"caption": plain or None, "caption_entities": entities or None}

    def _reply_target(self, p: Params, chat: dict[str, Any]) -> dict[str, Any] | None:
        reply = p.json("reply_parameters") or {}
        if not isinstance(reply, dict):
            raise bad_request("can't parse reply parameters JSON object")
        message_id = reply.get("message_id", p.int("reply_to_message_id"))
        if message_id is None:
            return None
        target_chat = chat
        if reply.get("chat_id") not in (None, chat["id"]):
            target_chat = self.world.resolve_chat(reply["chat_id"])
        target = self.world.message(target_chat["id"], int(message_id))
        allow_without = reply.get("allow_sending_without_reply") or p.bool(
            "allow_sending_without_reply"
        )
        if target is None and not allow_without:
            raise bad_request("message to be replied not found")
        return target

    def _reply_markup(self, p: Params, chat: dict[str, Any]) -> dict[str, Any] | None:
        markup = p.json(
            "reply_markup", error=bad_request("can't parse reply keyboard markup JSON object")
        )
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("object expected as reply markup")
        if "inline_keyboard" in markup:
            _check_inline_keyboard(markup["inline_keyboard"])
        if "keyboard" in markup:
            _check_reply_keyboard(markup["keyboard"], chat["type"])
        return markup

    def _deliver(
        self,
        method: str,
        p: Params,
        chat: dict[str, Any],
        fields: dict[str, Any],
        source_text: str | None,
        data: bytes | None = None,
    ) -> Ok:
        """Store a bot message, log it for the test and answer with the Message object."""
        markup = self._reply_markup(p, chat)
        reply_to = self._reply_target(p, chat)
        if markup and "inline_keyboard" in markup:
            fields["reply_markup"] = markup
        message = self.world.new_message(chat, self.world.bot, reply_to, **fields)
        record = self._record(method, p, chat, message, source_text, markup)
        record.file = data
        self.sent.append(record)
        self.on_change()
        return Ok(message)

    @staticmethod
    def _record(
        method: str,
        p: Params,
        chat: dict[str, Any],
        message: dict[str, Any],
        source_text: str | None,
        markup: dict[str, Any] | None = None,
    ) -> SentMessage:
        reply_to = message.get("reply_to_message") or {}
        return SentMessage(
            method=method,
            chat_id=chat["id"],
            message_id=message["message_id"],
            text=message.get("text", message.get("caption")),
            source_text=source_text,
            parse_mode=p.str("parse_mode"),
            entities=message.get("entities", message.get("caption_entities", [])),
            reply_markup=markup if markup is not None else message.get("reply_markup"),
            reply_to_message_id=reply_to.get("message_id"),
            message=copy.deepcopy(message),
        )


def _set_or_drop(message: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        message.pop(key, None)
    else:
        message[key] = value


def _blocked_reason(chat_type: str) -> str:
    if chat_type == "group":
        return "bot was kicked from the group chat"
    if chat_type in {"supergroup", "channel"}:
        return f"bot was kicked from the {chat_type} chat"
    return "bot was blocked by the user"


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            if not any(kind in button for kind in INLINE_BUTTON_KINDS):
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")


def _check_reply_keyboard(rows: Any, chat_type: str) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            if isinstance(button, str):
                continue
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request(
                    'can\'t parse keyboard button: Field "text" must be of type String'
                )
            if chat_type != "private" and button.get("request_contact"):
                raise bad_request("phone number can be requested in private chats only")
            if chat_type != "private" and button.get("request_location"):
                raise bad_request("location can be requested in private chats only")

"""BotApiServer: the HTTP side of the fake Bot API and the scripting API tests drive it with."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import secrets
from collections.abc import Callable
from functools import partial
from typing import Any, Self

from aiohttp import web

from .errors import ApiError, for_status
from .files import StoredFile
from .formatting import bot_command_entities
from .methods import Methods
from .params import Params, Upload
from .records import Call, Fault, SentMessage
from .updates import UpdateQueue
from .webhook import Delivery, Webhook
from .world import World, now

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_MAX_REQUEST = 50 << 20
_dumps = partial(json.dumps, ensure_ascii=False)

MediaArg = bytes | StoredFile | None


class BotApiServer:
    """A Bot API server on 127.0.0.1 for one bot token; use as an async context manager.

    Point aiogram at it with
    `AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))`.
    """

    def __init__(
        self,
        token: str = "42:TEST",
        *,
        bot_first_name: str = "Тестовый бот",
        bot_username: str = "callcenter_test_bot",
        webhook_retry_delay: float = 0.1,
        webhook_max_retry_delay: float = 2.0,
    ) -> None:
        match = _TOKEN.match(token)
        if match is None:
            raise ValueError(f"a bot token looks like '42:TEST', not {token!r}")
        self.token = token
        bot = {
            "id": int(match.group(1)),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.world = World(bot)
        self.queue = UpdateQueue()
        self.webhook = Webhook(self.queue, webhook_retry_delay, webhook_max_retry_delay)
        self.methods = Methods(self.world, self.queue, self.webhook)
        self.calls: list[Call] = []
        self.downloads: list[str] = []
        self._faults: list[Fault] = []
        self._tick = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.methods.on_change = self._notify
        self.webhook.on_change = self._notify
        self.webhook.run_reply = self._run_webhook_reply

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=_MAX_REQUEST)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.queue.closing = True
        self.queue.abort_poll("closing")
        await self.webhook.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def bot_user(self) -> dict[str, Any]:
        return copy.deepcopy(self.world.bot)

    # --- what the bot did ----------------------------------------------------------------------

    @property
    def sent(self) -> list[SentMessage]:
        """Messages the bot sent (sendMessage, sendPhoto, sendDocument), in order."""
        return self.methods.sent

    @property
    def edits(self) -> list[SentMessage]:
        """Successful editMessageText / editMessageReplyMarkup calls, in order."""
        return self.methods.edits

    @property
    def callback_answers(self) -> list[dict[str, Any]]:
        return self.methods.callback_answers

    @property
    def webhook_deliveries(self) -> list[Delivery]:
        return self.webhook.deliveries

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed (polling) or delivered (webhook)."""
        return len(self.queue)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    async def wait_sent(self, count: int = 1, timeout: float = 5.0) -> list[SentMessage]:
        """Wait until the bot has sent `count` messages in all; returns them all."""
        await self.wait_until(lambda: len(self.sent) >= count, timeout, f"{count} sent message(s)")
        return list(self.sent)

    async def wait_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until `method` has been called `count` times (answered or failed)."""
        await self.wait_until(
            lambda: len(self.calls_to(method)) >= count, timeout, f"{count} {method} call(s)"
        )
        return self.calls_to(method)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait for `predicate`, re-checked after every call and delivery; fail after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"fake Bot API: gave up after {timeout}s waiting for {what}")
            tick = self._tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tick.wait(), remaining)

    # --- scripting: chats, files, faults ---------------------------------------------------------

    def add_chat(self, chat_id: int, chat_type: str = "private", **fields: Any) -> dict[str, Any]:
        """Make a chat known without a message (the bot cannot write to unknown chats)."""
        user = self.world.user(chat_id, chat_type, None) if chat_type == "private" else None
        return copy.deepcopy(self.world.chat(chat_id, chat_type, user, **fields))

    def register_file(
        self,
        data: bytes,
        *,
        kind: str = "documents",
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        """A file the bot can getFile and download; kind is photos, documents or voice."""
        return self.world.files.add(data, kind, file_name, mime_type)

    def block_chat(self, chat_id: int) -> None:
        """From now on every call aimed at this chat fails with 403, as after a block or kick."""
        self.world.blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        self.world.blocked.discard(chat_id)

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int | None = None,
        count: int = 1,
        description: str | None = None,
        body: str | None = None,
        delay: float = 0.0,
        lost_response: bool = False,
    ) -> None:
        """Make the next `count` calls of `method` ('*' = any) fail with `status`.

        429 carries `parameters.retry_after` (default 1); other codes get the real wording
        (502 "Bad Gateway"...) unless `description` is given. `body` replaces the JSON answer
        with raw text (an nginx error page). With `lost_response` the call takes effect and
        only the answer is an error, as when a proxy drops the server's reply.
        """
        self._faults.append(
            Fault(
                method.lower(), status, description, retry_after, count, delay, lost_response, body
            )
        )

    def delay_next(self, method: str, seconds: float, *, count: int = 1) -> None:
        """Answer the next `count` calls of `method` only after `seconds` (for client timeouts)."""
        self._faults.append(Fault(method.lower(), None, None, None, count, seconds))

    def clear_faults(self) -> None:
        """Forget the failures and delays scripted and not used up yet."""
        self._faults.clear()

    # --- scripting: updates -------------------------------------------------------------------

    def push_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        from_user: dict[str, Any] | None = None,
        chat_type: str = "private",
        chat: dict[str, Any] | None = None,
        reply_to: int | None = None,
        contact: dict[str, Any] | None = None,
        photo: MediaArg = None,
        document: MediaArg = None,
        voice: MediaArg = None,
        file_name: str = "document.pdf",
        mime_type: str | None = None,
        duration: int = 3,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        """Queue a `message` update as a Telegram client would send it.

        `from_user` fields override a default Russian-named user (in a private chat its id is
        the chat id). With media, `text` becomes the caption. A `/command` in the text gets a
        bot_command entity unless `entities` is given. Returns the queued update, or None if
        the bot's allowed_updates filtered it out.
        """
        user = self.world.user(chat_id, chat_type, from_user)
        the_chat = self.world.chat(
            chat_id, chat_type, user if chat_type == "private" else None, **(chat or {})
        )
        fields: dict[str, Any] = {}
        if photo is not None:
            fields["photo"] = self._photo_sizes(photo)
        if document is not None:
            stored = self._file(document, "documents", file_name, mime_type or "application/pdf")
            fields["document"] = {
                **_file_fields(stored),
                "file_name": stored.file_name,
                "mime_type": stored.mime_type,
            }
        if voice is not None:
            stored = self._file(voice, "voice", None, mime_type or "audio/ogg")
            fields["voice"] = {
                **_file_fields(stored),
                "duration": duration,
                "mime_type": stored.mime_type,
            }
        if contact is not None:
            fields["contact"] = {
                "first_name": user["first_name"],
                "user_id": user["id"],
                **contact,
            }
        if text is not None:
            found = entities if entities is not None else bot_command_entities(text)
            key = "caption" if fields.keys() & {"photo", "document", "voice"} else "text"
            fields[key] = text
            fields[f"{key}_entities" if key == "caption" else "entities"] = found or None
        target = self.world.message(chat_id, reply_to)
        if reply_to is not None and target is None:
            raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
        message = self.world.new_message(the_chat, user, target, **fields)
        return self._push({"message": message})

    def push_edited_message(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        *,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        """Queue an `edited_message` update: the user edited an earlier message."""
        message = self.world.message(chat_id, message_id)
        if message is None or message["from"]["id"] == self.world.bot["id"]:
            raise ValueError(f"no user message {message_id} in chat {chat_id}")
        key = "caption" if "caption" in message or "text" not in message else "text"
        message[key] = text
        found = entities if entities is not None else bot_command_entities(text)
        message["caption_entities" if key == "caption" else "entities"] = found
        if not found:
            message.pop("caption_entities" if key == "caption" else "entities")
        message["edit_date"] = now()
        return self._push({"edited_message": copy.deepcopy(message)})

    def push_callback_query(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int | None = None,
        from_user: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Queue a `callback_query`: the user pressed an inline button on a bot message
        (by default the bot's latest message in the chat)."""
        if message_id is None:
            message = self.world.last_bot_message(chat_id)
        else:
            message = self.world.message(chat_id, message_id)
        if message is None:
            raise ValueError(f"no bot message in chat {chat_id} to press a button on")
        chat_type = self.world.chats[chat_id]["type"]
        query_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        self.world.callback_queries[query_id] = {"answered": False}
        query = {
            "id": query_id,
            "from": self.world.user(chat_id, chat_type, from_user),
            "message": self.world.snapshot(message),
            "chat_instance": str(-(abs(chat_id) * 7919 % 10**18) - 1),
            "data": data,
        }
        return self._push({"callback_query": query})

    def push_raw(self, update: dict[str, Any], *, keep_id: bool = True) -> dict[str, Any] | None:
        """Queue any update verbatim. With its own update_id (keep_id) it is the same update
        again: delivered only if that id was not confirmed yet. keep_id=False gives it a
        fresh update_id, so the same content arrives as a new update."""
        return self._push(copy.deepcopy(update), keep_id=keep_id)

    def _push(self, update: dict[str, Any], keep_id: bool = False) -> dict[str, Any] | None:
        queued = self.queue.push(update, keep_id)
        self._notify()
        return copy.deepcopy(queued) if queued is not None else None

    def _photo_sizes(self, photo: bytes | StoredFile) -> list[dict[str, Any]]:
        data = photo.data if isinstance(photo, StoredFile) else photo
        sizes = self.world.files.photo_sizes(data)
        if sizes is None:
            raise ValueError("photo must be PNG, JPEG, GIF or WebP bytes")
        return sizes

    def _file(
        self, given: bytes | StoredFile, kind: str, file_name: str | None, mime_type: str
    ) -> StoredFile:
        if isinstance(given, StoredFile):
            return given
        return self.world.files.add(given, kind, file_name, mime_type)

    def _notify(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    # --- HTTP ----------------------------------------------------------------------------------

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        call = Call(method, dict(request.query))
        self.calls.append(call)
        self._notify()
        try:
            params = await _read_params(request)
            call.params = params.loggable()
            self._check_token(request.match_info["token"])
            handler = self.methods.table.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            fault = self._take_fault(method)
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.status is not None and not fault.lost_response:
                return self._fault_response(call, fault)
            ok = await handler(params)
            if fault is not None and fault.status is not None:
                return self._fault_response(call, fault)
            body: dict[str, Any] = {"ok": True, "result": ok.result}
            if ok.description:
                body["description"] = ok.description
            status = 200
        except ApiError as error:
            body, status = error.body(), error.status
        call.status, call.description = status, body.get("description")
        self._notify()
        return web.json_response(body, status=status, dumps=_dumps)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        try:
            self._check_token(request.match_info["token"])
            stored = self.world.files.by_path(path)
            if stored is None:
                raise ApiError(404, "Not Found")
        except ApiError as error:
            return web.json_response(error.body(), status=error.status, dumps=_dumps)
        self.downloads.append(path)
        self._notify()
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    def _check_token(self, token: str) -> None:
        if _TOKEN.match(token) is None:
            raise ApiError(404, "Not Found")
        if token != self.token:
            raise ApiError(401, "Unauthorized")

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method):
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_response(self, call: Call, fault: Fault) -> web.Response:
        assert fault.status is not None
        error = for_status(fault.status, fault.description, fault.retry_after)
        call.status, call.description = fault.status, error.description
        self._notify()
        if fault.body is not None:
            return web.Response(text=fault.body, status=fault.status, content_type="text/html")
        return web.json_response(error.body(), status=fault.status, dumps=_dumps)

    async def _run_webhook_reply(self, method: str, params: Params) -> None:
        """A method the bot returned in its webhook answer; its result goes nowhere."""
        call = Call(method, params.loggable(), via_webhook_reply=True)
        self.calls.append(call)
        handler = self.methods.table.get(method)
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            await handler(params)
            call.status = 200
        except ApiError as error:
            call.status, call.description = error.status, error.description
            logger.info("webhook reply %s failed: %s", method, error.description)
        self._notify()


def _file_fields(stored: StoredFile) -> dict[str, Any]:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.file_size,
    }


async def _read_params(request: web.Request) -> Params:
    """Arguments from the query string and the body, whichever encoding the client chose."""
    raw: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method != "POST" or not request.body_exists:
        return Params(raw)
    try:
        if request.content_type == "application/json":
            data = await request.json()
            if not isinstance(data, dict):
                raise ApiError(400, "Bad Request: can't parse JSON encoded request")
            raw.update(data)
        else:
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[name] = Upload(value.filename, value.content_type, value.file.read())
                else:
                    raw[name] = value
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    except ValueError:
        raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
    return Params(raw, uploads)

"""Webhook delivery: POST each queued update to the bot until it answers 2xx.

Behaves like telegram-bot-api in --local mode (plain HTTP and any port allowed), one update
at a time in queue order. A 2xx reply may carry a method call, which the server performs.
Deliveries go to loopback addresses only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from yarl import URL

from .errors import bad_request, retry_after
from .params import Params, Upload
from .updates import DEFAULT_ALLOWED, UPDATE_TYPES, UpdateQueue
from .world import now

logger = logging.getLogger(__name__)

# Methods telegram-bot-api refuses to run from a webhook reply.
_NOT_FROM_REPLY = {"deletewebhook", "setwebhook", "close", "logout"}


@dataclass
class Delivery:
    """One POST to the webhook: the update and what came back (HTTP status or error text)."""

    update_id: int
    status: int | None
    error: str | None
    secret_token: str | None


ReplyRunner = Callable[[str, Params], Awaitable[None]]


class Webhook:
    def __init__(
        self,
        queue: UpdateQueue,
        retry_delay: float,
        max_retry_delay: float,
        request_timeout: float = 10.0,
    ) -> None:
        self.queue = queue
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.request_timeout = request_timeout
        self.url = ""
        self.secret_token = ""
        self.max_connections = 40
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self.deliveries: list[Delivery] = []
        self.run_reply: ReplyRunner | None = None
        self.on_change: Callable[[], None] = lambda: None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._next_set_time = 0.0

    def check_rate(self) -> None:
        """The real server lets a bot set a new webhook at most once a second."""
        moment = time.monotonic()
        if moment < self._next_set_time:
            raise retry_after(1)
        self._next_set_time = moment + 1

    async def verify(self, url: str) -> None:
        """Check the URL and that something listens there, as setWebhook does."""
        try:
            parsed = URL(url)
        except ValueError:
            raise bad_request("invalid webhook URL specified") from None
        if parsed.scheme not in {"http", "https"} or not parsed.host:
            raise bad_request("invalid webhook URL specified")
        if not _is_loopback(parsed.host):
            raise bad_request("bad webhook: this fake delivers webhooks to loopback addresses only")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parsed.host, parsed.port), timeout=2
            )
        except (OSError, TimeoutError):
            raise bad_request("bad webhook: Connection refused") from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def start(self, url: str, secret_token: str, max_connections: int) -> None:
        await self.stop()
        self.url, self.secret_token, self.max_connections = url, secret_token, max_connections
        self._session = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(), name="fake-botapi-webhook")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.url = self.secret_token = ""
        self.last_error_date = self.last_error_message = None

    def info(self, pending: int, allowed: frozenset[str]) -> dict[str, Any]:
        """The WebhookInfo object."""
        info: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
        }
        if self.url:
            info["max_connections"] = self.max_connections
            info["ip_address"] = "127.0.0.1"
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        if allowed != DEFAULT_ALLOWED:
            info["allowed_updates"] = [kind for kind in UPDATE_TYPES if kind in allowed]
        return info

    async def _run(self) -> None:
        delay = self.retry_delay
        while True:
            head = self.queue.head(1)
            if not head:
                self.queue.arrived.clear()
                await self.queue.arrived.wait()
                continue
            update = head[0]
            delivered, wait = await self._post(update)
            self.on_change()
            if delivered:
                self.queue.remove(update)
                delay = self.retry_delay
                continue
            await asyncio.sleep(wait if wait is not None else delay)
            delay = min(delay * 2, self.max_retry_delay)

    async def _post(self, update: dict[str, Any]) -> tuple[bool, float | None]:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if self.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.secret_token
        body = json.dumps(update, ensure_ascii=False).encode()
        status: int | None = None
        wait: float | None = None
        try:
            async with self._session.post(
                self.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
            ) as response:
                status = response.status
                if 200 <= status <= 299:
                    self._log(update, status, None)
                    await self._perform_reply(response)
                    return True, None
                error = f"Wrong response from the webhook: {status} {response.reason}"
                header = response.headers.get("Retry-After", "")
                wait = min(float(header), 60.0) if header.isdigit() else None
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientConnectorError:
            error = "Connection refused"
        except aiohttp.ClientError:
            error = "Webhook connection closed"
        self.last_error_date, self.last_error_message = now(), error
        self._log(update, status, error)
        return False, wait

    def _log(self, update: dict[str, Any], status: int | None, error: str | None) -> None:
        self.deliveries.append(
            Delivery(update["update_id"], status, error, self.secret_token or None)
        )

    async def _perform_reply(self, response: aiohttp.ClientResponse) -> None:
        """Run the method a webhook may return in its 2xx body (JSON, form or multipart)."""
        raw: dict[str, Any] = {}
        uploads: dict[str, Upload] = {}
        kind = response.content_type
        if kind == "application/json":
            data = await response.json(content_type=None)
            if isinstance(data, dict):
                raw = data
        elif kind == "application/x-www-form-urlencoded":
            raw = dict(parse_qsl(await response.text()))
        elif kind == "multipart/form-data":
            reader = aiohttp.MultipartReader(response.headers, response.content)
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                    continue
                if part.filename:
                    uploads[part.name] = Upload(
                        part.filename,
                        part.headers.get("Content-Type", "application/octet-stream"),
                        bytes(await part.read()),
                    )
                else:
                    raw[part.name] = await part.text()
        method = str(raw.pop("method", "")).lower()
        if not method or method in _NOT_FROM_REPLY or method.startswith("get"):
            return
        if self.run_reply is not None:
            await self.run_reply(method, Params(raw, uploads))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""Delivering the ``webhook`` action's outbox rows: a JSON POST, retried on 5xx and 429.

``post`` is shared with the signed webhook subscriptions (``callcenter.crm.webhooks``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import aiohttp

from callcenter.models import Outbox
from callcenter.outbox import PermanentFailure, RetryLater

TIMEOUT = aiohttp.ClientTimeout(total=15)


class HttpRetry(RetryLater):
    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after)
        self.status = status


class HttpRefused(PermanentFailure):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def json_bytes(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def post(
    session: aiohttp.ClientSession,
    url: str,
    data: bytes,
    headers: Mapping[str, str] | None = None,
) -> int:
    """POST a JSON body; the HTTP status when it is below 300, else RetryLater/PermanentFailure
    (``HttpRetry``/``HttpRefused`` carry the status)."""
    try:
        async with session.post(
            url,
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=TIMEOUT,
        ) as response:
            status = response.status
            retry_after = response.headers.get("Retry-After", "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RetryLater(f"webhook {url}: {str(exc) or type(exc).__name__}") from exc
    if status < 300:
        return status
    message = f"webhook {url}: HTTP {status}"
    if status in (408, 429) or status >= 500:
        raise HttpRetry(message, status, float(retry_after) if retry_after.isdigit() else None)
    raise HttpRefused(message, status)


class WebhookSender:
    channel = "webhook"

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def send(self, item: Outbox) -> str | None:
        await post(self.session, item.payload["url"], json_bytes(item.payload["body"]))
        return None

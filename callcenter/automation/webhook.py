"""Delivering the ``webhook`` action's outbox rows: a JSON POST, retried on 5xx and 429."""

from __future__ import annotations

import aiohttp

from callcenter.models import Outbox
from callcenter.outbox import PermanentFailure, RetryLater

TIMEOUT = aiohttp.ClientTimeout(total=15)


class WebhookSender:
    channel = "webhook"

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def send(self, item: Outbox) -> str | None:
        url, body = item.payload["url"], item.payload["body"]
        try:
            async with self.session.post(url, json=body, timeout=TIMEOUT) as response:
                if response.status < 300:
                    return None
                if response.status in (408, 429) or response.status >= 500:
                    retry_after = response.headers.get("Retry-After", "")
                    raise RetryLater(
                        f"webhook {url}: HTTP {response.status}",
                        float(retry_after) if retry_after.isdigit() else None,
                    )
                raise PermanentFailure(f"webhook {url}: HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"webhook {url}: {exc or type(exc).__name__}") from exc

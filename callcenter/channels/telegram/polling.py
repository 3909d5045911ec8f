"""Long polling: the offset is advanced only after a batch has been committed.

Telegram keeps every update until a later getUpdates confirms it with a higher offset, so a
crash before the commit means the batch is simply delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramConflictError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.types import Update

from callcenter import health
from callcenter.channels.telegram.bot import ALLOWED_UPDATES
from callcenter.channels.telegram.processor import UpdateProcessor
from callcenter.channels.telegram.redact import redact

log = logging.getLogger(__name__)

POLL_TIMEOUT = 25
BATCH = 100
MAX_BACKOFF = 30.0


class Poller:
    def __init__(
        self,
        bot: Bot,
        processor: UpdateProcessor,
        *,
        poll_timeout: int = POLL_TIMEOUT,
        batch: int = BATCH,
        min_backoff: float = 0.5,
    ) -> None:
        self.bot = bot
        self.processor = processor
        self.poll_timeout = poll_timeout
        self.batch = batch
        self.min_backoff = min_backoff
        self.offset: int | None = None

    async def fetch(self) -> list[Update]:
        """One getUpdates call; its outcome is what /status shows for Telegram."""
        try:
            updates = await self.bot(
                GetUpdates(
                    offset=self.offset,
                    limit=self.batch,
                    timeout=self.poll_timeout,
                    allowed_updates=ALLOWED_UPDATES,
                ),
                request_timeout=self.poll_timeout + 10,
            )
        except TelegramRetryAfter:
            raise  # flood control: Telegram answered, it is not an outage
        except TelegramAPIError as exc:  # includes network errors and a refused token
            health.report_failure("telegram", redact(f"{type(exc).__name__}: {exc}"))
            raise
        health.report_ok("telegram")
        return updates

    async def run_once(self) -> int:
        """Fetch one batch, store it, then move the offset past it; returns its size."""
        updates = await self.fetch()
        if updates:
            await self.processor.process(updates)
            self.offset = max(update.update_id for update in updates) + 1
        return len(updates)

    async def run(self, stop: asyncio.Event) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        delay = self.min_backoff
        while not stop.is_set():
            step = asyncio.ensure_future(self.run_once())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({step, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                # Stopping mid-poll: an unconfirmed batch is delivered again next time.
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await step
                break
            stopping.cancel()
            try:
                step.result()
                delay = self.min_backoff
                continue
            except TelegramRetryAfter as exc:
                wait = float(exc.retry_after)
            except TelegramUnauthorizedError:
                log.error("telegram rejected the bot token; polling paused")
                wait = MAX_BACKOFF
            except TelegramConflictError as exc:
                log.warning("telegram polling conflict: %s", exc.message)
                wait = delay
            except TelegramAPIError as exc:
                log.warning("telegram polling failed: %s", redact(str(exc)))
                wait = delay
            except Exception:
                log.exception("storing telegram updates failed; they will be fetched again")
                wait = delay
            delay = min(delay * 2, MAX_BACKOFF)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        await self._confirm()

    async def _confirm(self) -> None:
        """Tell Telegram what was stored, so a restart does not fetch it again."""
        if self.offset is None:
            return
        with contextlib.suppress(TelegramAPIError, TimeoutError, OSError):
            await self.bot(GetUpdates(offset=self.offset, limit=1, timeout=0), request_timeout=5)

"""Keeping a process's classifier equal to the stored dictionary, without a restart.

Every process that classifies (``serve``, the channel workers, ``callcenter classify``) runs a
``LiveDictionary``: it compares the stored version with its own at most every ``interval``
seconds and, when they differ, compiles the new dictionary off the event loop and swaps it in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.classify.classifier import Classifier, activate, default_classifier
from callcenter.classify.model import PatternError
from callcenter.classify.store import load_dictionary, stored_version

log = logging.getLogger(__name__)

CHECK_SECONDS = 3.0


class LiveDictionary:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval: float = CHECK_SECONDS,
        install: Callable[[Classifier | None], None] | None = activate,
    ) -> None:
        """``install`` is told of every new classifier (by default: the process-wide one)."""
        self.sessions = sessions
        self.interval = interval
        self.install = install
        self.version = 0
        self.classifier = default_classifier()
        self._checked = float("-inf")

    async def refresh(self) -> bool:
        """Load the stored dictionary if its version changed; True when the classifier changed."""
        self._checked = time.monotonic()
        async with self.sessions() as session:
            if await stored_version(session) == self.version:
                return False
            version, patterns = await load_dictionary(session)
        try:
            classifier = await asyncio.to_thread(Classifier, patterns)
        except PatternError as exc:  # saved by an older, laxer release: keep what works
            log.error("stored classifier dictionary v%d is unusable: %s", version, exc)
            self.version = version
            return False
        self.version, self.classifier = version, classifier
        if self.install is not None:
            self.install(classifier)
        log.info("classifier dictionary v%d in use", version)
        return True

    async def maybe_refresh(self) -> None:
        """``refresh`` unless it ran less than ``interval`` seconds ago."""
        if time.monotonic() - self._checked >= self.interval:
            await self.refresh()

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``interval`` seconds until ``stop`` (a supervised component)."""
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception:  # the database may be away for a while; keep the last one
                log.exception("could not check the classifier dictionary")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

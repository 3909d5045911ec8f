"""The CRM lookup a screen-pop may wait for: bounded by a short timeout, cached for a while.

A lookup that outlives the timeout is not cancelled: it keeps running and fills the cache, so
the next pop for that number (or the next agent ringing) has the CRM's data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from callcenter.crm.base import Connector, CrmProfile
from callcenter.health import HealthRegistry, registry

log = logging.getLogger(__name__)

FAILURE_SECONDS = 30.0
"""A failed lookup is not repeated for this long (the CRM is down or limiting us)."""
MAX_ENTRIES = 10_000


class CrmLookup:
    def __init__(
        self,
        connector: Connector,
        *,
        timeout: float = 0.3,
        ttl: float = 300.0,
        health: HealthRegistry = registry,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector = connector
        self.timeout = timeout
        self.ttl = ttl
        self.health = health
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, CrmProfile | None]] = OrderedDict()
        self._running: dict[tuple[str, str], asyncio.Task[CrmProfile | None]] = {}

    async def _fetch(self, key: tuple[str, str]) -> CrmProfile | None:
        try:
            profile = await self.connector.lookup(phone=key[0], email=key[1])
        except Exception as exc:
            log.warning("CRM lookup of %s failed: %s", key, exc)
            self.health.report_failure("crm", exc)
            self._store(key, None, FAILURE_SECONDS)
            return None
        finally:
            self._running.pop(key, None)
        self.health.report_ok("crm")
        self._store(key, profile, self.ttl)
        return profile

    def _store(self, key: tuple[str, str], profile: CrmProfile | None, ttl: float) -> None:
        self._cache[key] = (self.clock() + ttl, profile)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_ENTRIES:
            self._cache.popitem(last=False)

    async def profile(self, *, phone: str = "", email: str = "") -> CrmProfile | None:
        """The CRM's profile, or None if unknown, failing or not answered within the timeout."""
        key = (phone, email)
        if not any(key):
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        task = self._running.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(key))
            self._running[key] = task
        done, _ = await asyncio.wait({task}, timeout=self.timeout)
        return task.result() if done else None

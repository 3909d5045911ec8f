"""Failed-login counting per account and per client address, in a sliding window."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

ACCOUNT_LIMIT = 10
ADDRESS_LIMIT = 30
WINDOW_SECONDS = 60.0
_MAX_KEYS = 50_000


class _Window:
    """Timestamps of failures per key; keys with nothing recent are dropped when it grows."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        cutoff = self._clock() - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def retry_after(self, key: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        hits = self._recent(key)
        if len(hits) < self.limit:
            return 0
        return max(1, int(hits[-self.limit] + self.window - self._clock()) + 1)

    def add(self, key: str) -> None:
        if len(self._hits) >= _MAX_KEYS:
            for stale in list(self._hits):
                self._recent(stale)
        hits = self._hits.setdefault(key, deque(maxlen=self.limit))
        hits.append(self._clock())

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)


class LoginLimiter:
    """At most ``ACCOUNT_LIMIT`` failures per account and ``ADDRESS_LIMIT`` per address a minute."""

    def __init__(
        self,
        account_limit: int = ACCOUNT_LIMIT,
        address_limit: int = ADDRESS_LIMIT,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accounts = _Window(account_limit, window, clock)
        self._addresses = _Window(address_limit, window, clock)

    def retry_after(self, account: str, address: str) -> int:
        return max(
            self._accounts.retry_after(account.lower()), self._addresses.retry_after(address)
        )

    def failed(self, account: str, address: str) -> None:
        self._accounts.add(account.lower())
        self._addresses.add(address)

    def succeeded(self, account: str) -> None:
        self._accounts.clear(account.lower())

"""When the wallboard publishes next: soon after a change, but at most every `min_interval`
seconds, and every `tick` seconds without changes so waits and times in state count up.

The minimum interval bounds the lag a change can wait behind the previous push: 50 ms keeps
the AMI-event-to-browser lag under 100 ms (bench/dashboard.py) at no more than 20 pushes a
second."""

from __future__ import annotations

import math


class Throttle:
    def __init__(self, min_interval: float = 0.05, tick: float = 1.0) -> None:
        if not 0 < min_interval <= tick:
            raise ValueError("need 0 < min_interval <= tick")
        self.min_interval = min_interval
        self.tick = tick
        self._last = -math.inf
        self._pending = False

    def changed(self) -> None:
        self._pending = True

    def delay(self, now: float) -> float:
        """Seconds from `now` (a monotonic clock) until the next publication is due."""
        gap = self.min_interval if self._pending else self.tick
        return max(0.0, self._last + gap - now)

    def published(self, now: float) -> None:
        self._last = now
        self._pending = False

"""Order status for the bot's automatic answers: a pluggable provider and a demo one.

A shop plugs in its own provider (an HTTP call to its back office, a database query) by
implementing ``OrderStatusProvider``; None means "unknown order", and the bot then hands the
conversation to an agent instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

STATES = ("processing", "shipped", "delivered", "cancelled")


@dataclass(frozen=True)
class OrderStatus:
    number: str
    state: str
    """One of ``STATES``."""
    eta: date | None = None


class OrderStatusProvider(Protocol):
    async def status(self, number: str) -> OrderStatus | None: ...


class DemoOrderStatusProvider:
    """Made-up but stable answers: the number modulo 4 picks processing (ETA in 3 days),
    shipped (ETA tomorrow), delivered, or unknown."""

    def __init__(self, today: Callable[[], date] = lambda: datetime.now(UTC).date()) -> None:
        self.today = today

    async def status(self, number: str) -> OrderStatus | None:
        if not number.isdigit():
            return None
        kind = int(number) % 4
        if kind == 0:
            return OrderStatus(number, "processing", self.today() + timedelta(days=3))
        if kind == 1:
            return OrderStatus(number, "shipped", self.today() + timedelta(days=1))
        if kind == 2:
            return OrderStatus(number, "delivered")
        return None

"""Business hours: whether the bot says "we are open" and when a callback is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DAY_NAMES = {
    "ru": ("пн", "вт", "ср", "чт", "пт", "сб", "вс"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


@dataclass(frozen=True)
class BusinessHours:
    """Open ``opens``–``closes`` local time on ``days`` (0 = Monday)."""

    timezone: str = "Europe/Moscow"
    days: frozenset[int] = frozenset(range(5))
    opens: time = time(9, 0)
    closes: time = time(18, 0)

    def _local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.timezone))

    def is_open(self, at: datetime) -> bool:
        local = self._local(at)
        return local.weekday() in self.days and self.opens <= local.time() < self.closes

    def next_opening(self, at: datetime) -> datetime:
        """``at`` itself when open, else the next moment the business opens (UTC)."""
        if self.is_open(at) or not self.days:
            return at
        local = self._local(at)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            start = datetime.combine(day, self.opens, local.tzinfo)
            if day.weekday() in self.days and start > local:
                return start.astimezone(UTC)
        return at

    def describe(self, language: str) -> str:
        """ "пн–пт 9:00–18:00 (Europe/Moscow)"; contiguous days become a range."""
        names = _DAY_NAMES.get(language, _DAY_NAMES["ru"])
        days = sorted(self.days)
        if days and days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
            span = f"{names[days[0]]}–{names[days[-1]]}"
        else:
            span = ", ".join(names[d] for d in days)
        hours = f"{_clock(self.opens)}–{_clock(self.closes)}"
        return f"{span} {hours} ({self.timezone})"


def _clock(moment: time) -> str:
    return f"{moment.hour}:{moment.minute:02d}"

"""Business hours in the shop's time zone, from a short spec such as
``"mon-fri 09:00-18:00; sat 10:00-15:00"`` (several intervals per day allowed, ``24:00`` ends
a day)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS = "mon-fri 09:00-18:00"
_INTERVAL = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")

Interval = tuple[time, time]


class BusinessHoursError(ValueError):
    """The business hours spec cannot be understood; the message says which part."""


@dataclass(frozen=True)
class BusinessHours:
    zone: ZoneInfo
    week: tuple[tuple[Interval, ...], ...]
    """Seven entries, Monday first: the open intervals of that weekday."""
    holidays: frozenset[date] = frozenset()

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        now = local.time().replace(tzinfo=None)
        return any(start <= now < end for start, end in self.week[local.weekday()])


def _clock(hours: str, minutes: str) -> time:
    if hours == "24":
        if minutes != "00":
            raise BusinessHoursError(f"no such time: {hours}:{minutes}")
        return time.max
    return time(int(hours), int(minutes))


def _days(token: str) -> list[int]:
    first, _, last = token.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise BusinessHoursError(f"unknown day {token!r}; use {', '.join(DAYS)} or a range mon-fri")
    start, end = DAYS.index(first), DAYS.index(last or first)
    if end < start:
        raise BusinessHoursError(f"day range {token!r} runs backwards")
    return list(range(start, end + 1))


def parse_hours(
    spec: str, timezone: str = "Europe/Moscow", holidays: Iterable[date] = ()
) -> BusinessHours:
    """Business hours from a spec; an empty spec means closed all week."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BusinessHoursError(f"unknown time zone {timezone!r}") from None
    week: list[list[Interval]] = [[] for _ in DAYS]
    for part in filter(None, (p.strip() for p in spec.lower().split(";"))):
        tokens = part.split()
        if len(tokens) < 2:
            raise BusinessHoursError(f"{part!r} needs days and at least one interval")
        for token in tokens[1:]:
            match = _INTERVAL.match(token)
            if not match:
                raise BusinessHoursError(f"{token!r} is not an interval like 09:00-18:00")
            start, end = _clock(*match.group(1, 2)), _clock(*match.group(3, 4))
            if end <= start:
                raise BusinessHoursError(f"interval {token!r} ends before it starts")
            for day in _days(tokens[0]):
                week[day].append((start, end))
    return BusinessHours(zone, tuple(tuple(day) for day in week), frozenset(holidays))

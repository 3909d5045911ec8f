"""Conditions and business hours, checked without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from callcenter.automation.business_hours import BusinessHoursError, parse_hours
from callcenter.automation.conditions import (
    Facts,
    InvalidRule,
    failing_condition,
    validate_conditions,
)

HOURS = parse_hours("mon-fri 09:00-13:00 14:00-18:00; sat 10:00-15:00", "Europe/Moscow")
FRIDAY_1423_MSK = datetime(2025, 11, 14, 11, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        (datetime(2025, 11, 14, 6, 0, tzinfo=UTC), True),  # Friday 09:00 Moscow
        (datetime(2025, 11, 14, 5, 59, tzinfo=UTC), False),  # 08:59
        (datetime(2025, 11, 14, 10, 30, tzinfo=UTC), False),  # lunch 13:30
        (datetime(2025, 11, 14, 15, 0, tzinfo=UTC), False),  # 18:00 is closed
        (datetime(2025, 11, 15, 8, 0, tzinfo=UTC), True),  # Saturday 11:00
        (datetime(2025, 11, 16, 8, 0, tzinfo=UTC), False),  # Sunday
    ],
)
def test_business_hours_are_in_moscow_time(utc: datetime, open_: bool) -> None:
    assert HOURS.is_open(utc) is open_


def test_holidays_and_whole_days() -> None:
    hours = parse_hours("mon-sun 00:00-24:00", "Europe/Moscow", holidays=[date(2026, 1, 1)])
    assert hours.is_open(datetime(2025, 12, 31, 20, 59, tzinfo=UTC))  # 23:59 on 31 December
    assert not hours.is_open(datetime(2025, 12, 31, 21, 0, tzinfo=UTC))  # New Year in Moscow
    assert parse_hours("", "Europe/Moscow").is_open(FRIDAY_1423_MSK) is False


@pytest.mark.parametrize(
    ("spec", "zone", "message"),
    [
        ("mon-fri", "Europe/Moscow", "needs days and at least one interval"),
        ("mon-fri 9-18", "Europe/Moscow", "not an interval"),
        ("fri-mon 09:00-18:00", "Europe/Moscow", "runs backwards"),
        ("holiday 09:00-18:00", "Europe/Moscow", "unknown day"),
        ("mon 18:00-09:00", "Europe/Moscow", "ends before it starts"),
        ("mon 09:00-18:00", "Mars/Olympus", "unknown time zone"),
    ],
)
def test_a_bad_business_hours_spec_says_what_is_wrong(spec: str, zone: str, message: str) -> None:
    with pytest.raises(BusinessHoursError, match=message):
        parse_hours(spec, zone)


FACTS = Facts(
    at=FRIDAY_1423_MSK,
    channel="telegram",
    intents=frozenset({"delivery"}),
    status="open",
    priority=2,
    language="ru",
    reachable=frozenset({"telegram", "email"}),
)


@pytest.mark.parametrize(
    ("conditions", "failing"),
    [
        ({}, None),
        ({"channel": ["telegram", "email"], "intents": ["refund", "delivery"]}, None),
        ({"status": ["new", "open"], "priority_min": 2, "priority_max": 2}, None),
        ({"has_email": True, "has_telegram": True, "has_phone": False}, None),
        ({"business_hours": True, "language": ["ru"]}, None),
        ({"channel": ["email"]}, "channel"),
        ({"intents": ["refund"]}, "intents"),
        ({"priority_min": 3}, "priority_min"),
        ({"has_phone": True}, "has_phone"),
        ({"business_hours": False}, "business_hours"),
        ({"language": ["en"]}, "language"),
        ({"call_outcome": ["answered"]}, "call_outcome"),
    ],
)
def test_conditions_hold_or_name_the_first_that_does_not(conditions, failing) -> None:  # type: ignore[no-untyped-def]
    assert failing_condition(validate_conditions(conditions), FACTS, HOURS) == failing


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ([], "must be an object"),
        ({"has_email": "yes"}, "true or false"),
        ({"priority_min": "1"}, "must be an integer"),
        ({"status": "open"}, "list of strings"),
        ({"status": ["archived"]}, "unknown value"),
    ],
)
def test_malformed_conditions_are_refused(conditions, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRule, match=message):
        validate_conditions(conditions)

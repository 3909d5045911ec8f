"""Rule conditions: a JSON object whose every entry must hold.

    {"channel": ["telegram"], "intents": ["delivery"], "status": ["new", "open"],
     "priority_min": 1, "priority_max": 3, "has_email": true, "has_phone": false,
     "has_telegram": true, "business_hours": true, "language": ["ru"],
     "call_outcome": ["answered"]}

``intents`` holds when any listed intent is present; ``business_hours: false`` means outside
them. A condition about something the event does not have (the status of a call with no
ticket) does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callcenter.automation.business_hours import BusinessHours
from callcenter.domain.errors import DomainError
from callcenter.models import CallOutcome, Channel, TicketStatus


class InvalidRule(DomainError):
    code = "invalid-rule"


@dataclass(frozen=True)
class Facts:
    """What conditions are checked against, gathered once per event."""

    at: datetime
    channel: str | None = None
    intents: frozenset[str] = frozenset()
    status: str | None = None
    priority: int | None = None
    language: str = "ru"
    reachable: frozenset[str] = field(default_factory=frozenset)
    """Identity kinds the customer can be reached by: ``email``, ``phone``, ``telegram``."""
    call_outcome: str | None = None


def _values(allowed: tuple[str, ...] | None) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRule(f"condition {name!r} must be a list of strings")
        unknown = sorted(set(value) - set(allowed)) if allowed else []
        if unknown:
            raise InvalidRule(
                f"condition {name!r}: unknown value(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(allowed or ())}"
            )

    return check


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidRule(f"condition {name!r} must be true or false")


def _number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRule(f"condition {name!r} must be an integer")


_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "channel": _values(tuple(c.value for c in Channel)),
    "intents": _values(None),
    "status": _values(tuple(s.value for s in TicketStatus)),
    "priority_min": _number,
    "priority_max": _number,
    "has_email": _flag,
    "has_phone": _flag,
    "has_telegram": _flag,
    "business_hours": _flag,
    "language": _values(None),
    "call_outcome": _values(tuple(o.value for o in CallOutcome)),
}


def validate_conditions(conditions: Any) -> dict[str, Any]:
    """The conditions if well-formed; InvalidRule naming the first problem otherwise."""
    if not isinstance(conditions, Mapping):
        raise InvalidRule("conditions must be an object")
    for name, value in conditions.items():
        if name not in _CHECKS:
            raise InvalidRule(f"unknown condition {name!r}; known: {', '.join(_CHECKS)}")
        _CHECKS[name](name, value)
    return dict(conditions)


def _holds(name: str, value: Any, facts: Facts, hours: BusinessHours) -> bool:
    match name:
        case "channel":
            return facts.channel in value
        case "intents":
            return bool(facts.intents & set(value))
        case "status":
            return facts.status in value
        case "priority_min":
            return facts.priority is not None and facts.priority >= value
        case "priority_max":
            return facts.priority is not None and facts.priority <= value
        case "has_email" | "has_phone" | "has_telegram":
            return (name.removeprefix("has_") in facts.reachable) is value
        case "business_hours":
            return hours.is_open(facts.at) is value
        case "language":
            return facts.language in value
        case "call_outcome":
            return facts.call_outcome in value
    raise InvalidRule(f"unknown condition {name!r}")


def failing_condition(
    conditions: Mapping[str, Any], facts: Facts, hours: BusinessHours
) -> str | None:
    """The name of the first condition that does not hold, or None when all hold."""
    for name, value in conditions.items():
        if not _holds(name, value, facts, hours):
            return name
    return None

"""What each external component last reported: ok or failing, the last error and when.

Adapters call ``report_ok("ami")`` / ``report_failure("ami", exc)`` on the module-level
``registry``; the admin ``/status`` page reads it. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime

COMPONENTS = ("ami", "ari", "database", "telegram", "imap", "smtp")
_MAX_ERROR = 500


class State(enum.StrEnum):
    OK = "ok"
    FAILING = "failing"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    state: State = State.UNKNOWN
    since: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None


class HealthRegistry:
    def __init__(self, components: tuple[str, ...] = COMPONENTS) -> None:
        self._items = {name: ComponentHealth(name) for name in components}

    def report_ok(self, name: str) -> None:
        current = self._items.get(name, ComponentHealth(name))
        if current.state is not State.OK:
            current = replace(current, state=State.OK, since=datetime.now(UTC))
        self._items[name] = current

    def report_failure(self, name: str, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        now = datetime.now(UTC)
        current = self._items.get(name, ComponentHealth(name))
        self._items[name] = replace(
            current,
            state=State.FAILING,
            since=current.since if current.state is State.FAILING else now,
            last_error=message.strip()[:_MAX_ERROR],
            last_error_at=now,
        )

    def snapshot(self) -> list[ComponentHealth]:
        return list(self._items.values())


registry = HealthRegistry()
report_ok = registry.report_ok
report_failure = registry.report_failure

"""The wallboard's JSON: what the browser shows of the live queues and agents.

Alarm flags are decided here, not in the browser, so the thresholds live in one place and the
page only maps them to colours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from callcenter.channels.telephony.state import AgentSnapshot, QueueSnapshot, WaitingCaller
from callcenter.config import ConfigError, Settings
from callcenter.dashboard.backlog import Backlog, Waiting


@dataclass(frozen=True)
class Policy:
    """When the wallboard raises an alarm (settings wallboard_*)."""

    service_level_target: float = 80.0
    """Percent; a queue whose service level today is under it is coloured."""
    long_wait_seconds: int = 60
    """A caller waiting this long (or longer) is coloured, and so is the queue's longest wait."""
    repeat_contact_goal: float = 5.0
    repeat_contact_alarm: float = 15.0
    """Percent; the repeat-contact rate over the alarm is coloured."""
    answer_promise_minutes: int = 120

    def __post_init__(self) -> None:
        if not 0 <= self.service_level_target <= 100:
            raise ValueError("the service-level target is a percent (0 turns its alarm off)")
        if self.long_wait_seconds <= 0 or self.answer_promise_minutes <= 0:
            raise ValueError("the long wait and the answer promise must be positive")
        if not 0 <= self.repeat_contact_goal <= self.repeat_contact_alarm <= 100:
            raise ValueError("need 0 <= repeat-contact goal <= alarm <= 100 (percent)")

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        try:
            return cls(
                service_level_target=settings.wallboard_service_level_target,
                long_wait_seconds=settings.wallboard_long_wait_seconds,
                repeat_contact_goal=settings.wallboard_repeat_contact_goal,
                repeat_contact_alarm=settings.wallboard_repeat_contact_alarm,
                answer_promise_minutes=settings.wallboard_answer_promise_minutes,
            )
        except ValueError as exc:
            raise ConfigError(f"wallboard settings: {exc}") from None

    @property
    def answer_promise(self) -> timedelta:
        return timedelta(minutes=self.answer_promise_minutes)


def _round(value: float | None, digits: int = 0) -> float | int | None:
    if value is None:
        return None
    return round(value, digits) if digits else round(value)


def caller_json(caller: WaitingCaller, policy: Policy) -> dict[str, Any]:
    return {
        "linkedid": caller.linkedid,
        "number": caller.caller_number,
        "name": caller.caller_name,
        "position": caller.position,
        "wait": caller.wait_seconds,
        "long": caller.wait_seconds >= policy.long_wait_seconds,
    }


def queue_json(queue: QueueSnapshot, policy: Policy) -> dict[str, Any]:
    low = queue.service_level is not None and queue.service_level < policy.service_level_target
    return {
        "name": queue.name,
        "callers": [caller_json(c, policy) for c in queue.callers],
        "waiting": len(queue.callers),
        "longest_wait": queue.longest_wait_seconds,
        "answered": queue.answered_today,
        "abandoned": queue.abandoned_today,
        "timeout": queue.timeout_today,
        "answered_in_sl": queue.answered_within_service_level_today,
        "sl_seconds": queue.service_level_seconds,
        "abandoned_in_sl": queue.abandoned_in_service_level,
        "service_level": _round(queue.service_level, 1),
        "avg_wait": _round(queue.average_wait_seconds),
        "avg_talk": _round(queue.average_talk_seconds),
        "logged_in": queue.agents_logged_in,
        "available": queue.agents_available,
        "alarms": {
            "service_level": low,
            "long_wait": queue.longest_wait_seconds >= policy.long_wait_seconds,
        },
    }


def agent_json(agent: AgentSnapshot) -> dict[str, Any]:
    return {
        "interface": agent.interface,
        "name": agent.name,
        "state": agent.state.value,
        "reason": agent.reason,
        "seconds": agent.seconds_in_state,
        "queues": list(agent.queues),
        "paused_queues": list(agent.paused_queues),
        "caller_number": agent.caller_number,
        "caller_name": agent.caller_name,
        "queue": agent.call_queue,
        "calls_today": agent.calls_today,
    }


def _waiting_json(waiting: Waiting, now: datetime, alarm: bool = False) -> dict[str, Any]:
    oldest = (
        None if waiting.oldest is None else max(0, round((now - waiting.oldest).total_seconds()))
    )
    return {"count": waiting.count, "oldest": oldest, "alarm": alarm and waiting.count > 0}


def tiles_json(backlog: Backlog, policy: Policy, now: datetime) -> dict[str, Any]:
    """The omnichannel tiles: counts, the oldest wait in seconds, and their alarms."""
    rate = backlog.repeat.percent
    return {
        "telegram": _waiting_json(backlog.telegram, now),
        "email": _waiting_json(backlog.email, now),
        "breaching": _waiting_json(backlog.breaching, now, alarm=True),
        "callbacks": _waiting_json(backlog.callbacks, now),
        "repeat": {
            "percent": _round(rate, 1),
            "repeated": backlog.repeat.repeated,
            "solved": backlog.repeat.solved,
            "over_goal": rate is not None and rate > policy.repeat_contact_goal,
            "alarm": rate is not None and rate > policy.repeat_contact_alarm,
        },
    }


def board_json(
    queues: Iterable[QueueSnapshot],
    agents: Iterable[AgentSnapshot],
    policy: Policy,
    now: datetime,
    backlog: Backlog | None = None,
) -> dict[str, Any]:
    """The whole wallboard at `now`: plain JSON types only. Tiles are None until the backlog
    has been read once."""
    return {
        "at": now.isoformat(),
        "policy": {
            "service_level_target": policy.service_level_target,
            "long_wait_seconds": policy.long_wait_seconds,
            "repeat_contact_goal": policy.repeat_contact_goal,
            "repeat_contact_alarm": policy.repeat_contact_alarm,
            "answer_promise_minutes": policy.answer_promise_minutes,
        },
        "queues": [queue_json(q, policy) for q in queues],
        "agents": [agent_json(a) for a in agents],
        "tiles": None if backlog is None else tiles_json(backlog, policy, now),
    }

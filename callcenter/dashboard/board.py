"""The wallboard's JSON: what the browser shows of the live queues and agents.

Alarm flags are decided here, not in the browser, so the thresholds live in one place and the
page only maps them to colours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callcenter.channels.telephony.state import AgentSnapshot, QueueSnapshot, WaitingCaller


@dataclass(frozen=True)
class Policy:
    """When the wallboard raises an alarm."""

    service_level_target: float = 80.0
    """Percent; a queue whose service level today is under it is coloured."""
    long_wait_seconds: int = 60
    """A caller waiting this long (or longer) is coloured, and so is the queue's longest wait."""


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


def board_json(
    queues: Iterable[QueueSnapshot],
    agents: Iterable[AgentSnapshot],
    policy: Policy,
    now: datetime,
) -> dict[str, Any]:
    """The whole wallboard at `now`: plain JSON types only."""
    return {
        "at": now.isoformat(),
        "policy": {
            "service_level_target": policy.service_level_target,
            "long_wait_seconds": policy.long_wait_seconds,
        },
        "queues": [queue_json(q, policy) for q in queues],
        "agents": [agent_json(a) for a in agents],
    }

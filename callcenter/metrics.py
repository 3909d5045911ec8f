"""Prometheus metrics: live queues and agents, channel backlogs, the outbox and component health.

Built afresh for each scrape from what the process already holds (the wallboard's snapshot,
the health registry) and two small database counts, so nothing is kept twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain.inbox import OPEN_STATUSES
from callcenter.health import ComponentHealth, State
from callcenter.models import Channel, Outbox, OutboxStatus, Ticket

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_QUEUE_FIGURES = {
    "waiting": ("callcenter_queue_callers_waiting", "Callers waiting in the queue now"),
    "longest_wait": ("callcenter_queue_longest_wait_seconds", "Longest current wait"),
    "answered": ("callcenter_queue_answered_today", "Calls answered today"),
    "abandoned": ("callcenter_queue_abandoned_today", "Calls abandoned today"),
    "logged_in": ("callcenter_queue_agents_logged_in", "Agents logged in to the queue"),
    "available": ("callcenter_queue_agents_available", "Agents available in the queue"),
}


async def backlog(session: AsyncSession) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """(open tickets without a first answer per channel, outbox rows per channel and status)."""
    waiting = await session.execute(
        select(Ticket.channel, func.count())
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.first_response_at.is_(None))
        .group_by(Ticket.channel)
    )
    outbox = await session.execute(
        select(Outbox.channel, Outbox.status, func.count())
        .where(Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.FAILED]))
        .group_by(Outbox.channel, Outbox.status)
    )
    first_answer = {channel.value: count for channel, count in waiting}
    rows = {(channel, status.value): count for channel, status, count in outbox}
    return first_answer, rows


def render(
    board: Mapping[str, Any] | None,
    health: Iterable[ComponentHealth],
    first_answer: Mapping[str, int],
    outbox: Mapping[tuple[str, str], int],
) -> bytes:
    """The exposition text of one scrape."""
    registry = CollectorRegistry()
    if board is not None:
        for key, (name, doc) in _QUEUE_FIGURES.items():
            gauge = Gauge(name, doc, ["queue"], registry=registry)
            for queue in board["queues"]:
                gauge.labels(queue["name"]).set(queue[key])
        level = Gauge(
            "callcenter_queue_service_level_ratio",
            "Answered within the threshold today, 0-1",
            ["queue"],
            registry=registry,
        )
        for queue in board["queues"]:
            if queue["service_level"] is not None:
                level.labels(queue["name"]).set(queue["service_level"] / 100)
        agents = Gauge("callcenter_agents", "Agents by state", ["state"], registry=registry)
        for state, count in Counter(a["state"] for a in board["agents"]).items():
            agents.labels(state).set(count)
    waiting = Gauge(
        "callcenter_tickets_awaiting_first_answer",
        "Open tickets nobody has answered yet, by channel",
        ["channel"],
        registry=registry,
    )
    for channel in (Channel.TELEGRAM, Channel.EMAIL, Channel.CALL):
        waiting.labels(channel.value).set(first_answer.get(channel.value, 0))
    rows = Gauge(
        "callcenter_outbox_messages", "Outbox rows by channel and status",
        ["channel", "status"], registry=registry,
    )  # fmt: skip
    for (channel, status), count in outbox.items():
        rows.labels(channel, status).set(count)
    up = Gauge("callcenter_component_up", "1 when the component reports ok", ["component"],
               registry=registry)  # fmt: skip
    for component in health:
        up.labels(component.name).set(1 if component.state is State.OK else 0)
    return generate_latest(registry)

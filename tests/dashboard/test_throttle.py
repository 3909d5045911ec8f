"""Throttled publishing: soon after a change, never more often than the minimum interval, and
on every tick so waits count up."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from callcenter.bus import Bus
from callcenter.channels.telephony.events import CallerJoined, QueueChanged
from callcenter.channels.telephony.state import LiveState
from callcenter.dashboard.backlog import Backlog, RepeatRate, Waiting
from callcenter.dashboard.throttle import Throttle
from callcenter.dashboard.wallboard import EVENT, Wallboard
from callcenter.models import Role


def test_the_first_publication_is_due_at_once() -> None:
    assert Throttle().delay(100.0) == 0.0


def test_without_changes_it_publishes_on_the_tick() -> None:
    throttle = Throttle(min_interval=0.2, tick=1.0)
    throttle.published(100.0)
    assert throttle.delay(100.0) == 1.0
    assert throttle.delay(100.5) == pytest.approx(0.5)
    assert throttle.delay(101.3) == 0.0


def test_a_change_is_published_after_the_minimum_interval_at_most() -> None:
    throttle = Throttle(min_interval=0.2, tick=1.0)
    throttle.published(100.0)
    throttle.changed()
    assert throttle.delay(100.05) == pytest.approx(0.15)
    assert throttle.delay(100.5) == 0.0  # a change long after the last publication: at once
    throttle.published(100.5)
    for _ in range(100):  # a burst of changes still waits out the interval
        throttle.changed()
    assert throttle.delay(100.5) == pytest.approx(0.2)
    throttle.published(100.7)
    assert throttle.delay(100.7) == pytest.approx(1.0)  # the burst is consumed


def test_the_interval_must_fit_in_the_tick() -> None:
    with pytest.raises(ValueError):
        Throttle(min_interval=2.0, tick=1.0)
    with pytest.raises(ValueError):
        Throttle(min_interval=0.0)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[Role, str, dict]] = []

    def __call__(self, role: Role, event: str, data: dict) -> int:
        self.sent.append((role, event, data))
        return 1


async def test_the_wallboard_publishes_a_burst_of_events_once_to_supervisors_and_admins() -> None:
    sent = Recorder()
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    clock = [0.0]
    wallboard = Wallboard(
        LiveState(), sent, throttle=Throttle(0.2, 1.0), now=lambda: now, clock=lambda: clock[0]
    )
    bus = Bus()
    wallboard.subscribe(bus)
    stop = asyncio.Event()
    task = asyncio.create_task(wallboard.run(stop))
    try:
        await asyncio.sleep(0.05)
        assert [(r, e) for r, e, _ in sent.sent] == [(Role.SUPERVISOR, EVENT), (Role.ADMIN, EVENT)]
        first = sent.sent[0][2]
        assert (first["at"], first["queues"], first["agents"], first["tiles"]) == (
            now.isoformat(),
            [],
            [],
            None,
        )
        assert first["policy"]["service_level_target"] == 80.0
        sent.sent.clear()

        clock[0] = 0.1  # within the minimum interval: the burst waits for the clock
        for _ in range(50):
            bus.publish(QueueChanged("support"))
        bus.publish(CallerJoined("support", "1.1", "1.1", "+7", "Иван", 1, now))
        await bus.drain()
        await asyncio.sleep(0.05)
        assert sent.sent == []
        clock[0] = 0.3
        wallboard.changed()  # wake the loop to read the moved clock
        await asyncio.sleep(0.05)
        assert len(sent.sent) == 2  # once per role for the whole burst
        sent.sent.clear()
        await asyncio.sleep(0.05)
        assert sent.sent == []  # nothing new until the tick (clock[0] + 1 s)

        # A new reading of the tiles is pushed like any change; the same reading is not.
        empty = Backlog(Waiting(), Waiting(), Waiting(), Waiting(), RepeatRate(0, 0))
        clock[0] = 0.6
        wallboard.set_backlog(empty)
        await asyncio.sleep(0.05)
        assert len(sent.sent) == 2 and sent.sent[0][2]["tiles"]["telegram"]["count"] == 0
        sent.sent.clear()
        clock[0] = 0.9
        wallboard.set_backlog(replace(empty))
        await asyncio.sleep(0.05)
        assert sent.sent == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 2)

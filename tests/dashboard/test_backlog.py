"""The omnichannel tiles over a small hand-made data set, figures worked out by hand; the
watcher re-reading them after a bus event; the thresholds as settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.analytics.models import TicketDayRollup
from callcenter.bus import Bus
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.config import ConfigError, Settings, load_settings
from callcenter.dashboard.backlog import Backlog, RepeatRate, Waiting, read_backlog
from callcenter.dashboard.board import Policy, tiles_json
from callcenter.dashboard.watch import BacklogWatch
from callcenter.domain.events import TicketCreated
from callcenter.models import Channel, Customer, Ticket, TicketStatus

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 15:00 in Moscow
PROMISE = timedelta(hours=2)
MOSCOW = ZoneInfo("Europe/Moscow")


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def ticket(customer: Customer, channel: Channel, created: datetime, **fields) -> Ticket:
    fields.setdefault("status", TicketStatus.OPEN)
    return Ticket(customer_id=customer.id, channel=channel, created_at=created, **fields)


def rollup(day: date, metric: str, channel: str, **counts: int) -> TicketDayRollup:
    return TicketDayRollup(day=day, metric=metric, channel=channel, agent_id=0, bucket=0, **counts)


async def fill(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as db, db.begin():
        ann, bob, eve, kim = (Customer(display_name=n) for n in ("Ann", "Bob", "Eve", "Kim"))
        db.add_all([ann, bob, eve, kim])
        await db.flush()
        answered = {"first_response_at": ago(minutes=5)}
        db.add_all(
            [
                # Waiting for a first answer: Telegram 2 (oldest 3 h, past the promise), email 1.
                ticket(ann, Channel.TELEGRAM, ago(hours=3)),
                ticket(bob, Channel.TELEGRAM, ago(minutes=10), status=TicketStatus.NEW),
                ticket(eve, Channel.EMAIL, ago(minutes=125)),
                # Not waiting: answered, pending on the customer, solved, or a call.
                ticket(kim, Channel.EMAIL, ago(hours=5), **answered),
                ticket(kim, Channel.TELEGRAM, ago(hours=9), status=TicketStatus.PENDING),
                ticket(kim, Channel.CALL, ago(hours=4)),
                # Solved: not waiting (the repeat contacts come from the analytics rollup).
                ticket(
                    ann,
                    Channel.EMAIL,
                    ago(days=6),
                    status=TicketStatus.SOLVED,
                    solved_at=ago(days=5),
                    **answered,
                ),
            ]
        )
        await db.flush()
        db.add_all(
            [
                # Seven local days: 24 February to 2 March.
                rollup(date(2026, 3, 2), "solved", "telegram", tickets=5, repeats=1),
                rollup(date(2026, 2, 24), "solved", "email", tickets=3, repeats=2),
                rollup(date(2026, 2, 23), "solved", "email", tickets=100, repeats=50),
                rollup(date(2026, 3, 1), "created", "email", tickets=40),
                CallbackRequest(customer_id=ann.id, phone="+79161234567", due_at=ago(minutes=40)),
                CallbackRequest(customer_id=bob.id, phone="+79031112233", due_at=ago(minutes=2)),
                CallbackRequest(customer_id=eve.id, phone="+79035550000", due_at=NOW + PROMISE),
                CallbackRequest(
                    customer_id=kim.id,
                    phone="+7903",
                    due_at=ago(hours=1),
                    status=CallbackStatus.DONE,
                ),
            ]
        )


async def test_the_tiles_count_what_waits_and_the_repeat_contacts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await fill(sessions)
    async with sessions() as db:
        backlog = await read_backlog(db, NOW, PROMISE, MOSCOW)
    assert backlog == Backlog(
        telegram=Waiting(2, ago(hours=3)),
        email=Waiting(1, ago(minutes=125)),
        breaching=Waiting(2, ago(hours=3)),
        callbacks=Waiting(2, ago(minutes=40)),
        repeat=RepeatRate(repeated=3, solved=8),
    )
    tiles = tiles_json(backlog, Policy(repeat_contact_goal=5, repeat_contact_alarm=30), NOW)
    assert tiles == {
        "telegram": {"count": 2, "oldest": 3 * 3600, "alarm": False},
        "email": {"count": 1, "oldest": 125 * 60, "alarm": False},
        "breaching": {"count": 2, "oldest": 3 * 3600, "alarm": True},
        "callbacks": {"count": 2, "oldest": 40 * 60, "alarm": False},
        "repeat": {
            "percent": 37.5,
            "repeated": 3,
            "solved": 8,
            "over_goal": True,
            "alarm": True,
        },
    }


def test_nothing_waiting_raises_no_alarm() -> None:
    empty = Backlog(Waiting(), Waiting(), Waiting(), Waiting(), RepeatRate(0, 0))
    tiles = tiles_json(empty, Policy(), NOW)
    assert tiles["breaching"] == {"count": 0, "oldest": None, "alarm": False}
    assert tiles["repeat"] == {
        "percent": None,
        "repeated": 0,
        "solved": 0,
        "over_goal": False,
        "alarm": False,
    }
    low = Backlog(Waiting(), Waiting(), Waiting(), Waiting(), RepeatRate(1, 10))
    assert tiles_json(low, Policy(), NOW)["repeat"]["over_goal"] is True
    assert tiles_json(low, Policy(), NOW)["repeat"]["alarm"] is False


async def test_the_watch_reads_again_after_a_bus_event(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    readings: list[Backlog] = []
    watch = BacklogWatch(
        sessions,
        PROMISE,
        readings.append,
        zone=MOSCOW,
        interval=3600,
        min_gap=0.01,
        now=lambda: NOW,
    )
    bus, stop = Bus(), asyncio.Event()
    watch.subscribe(bus)
    task = asyncio.create_task(watch.run(stop))
    try:
        async with asyncio.timeout(10):
            while not readings:
                await asyncio.sleep(0.01)
        assert readings[0].telegram == Waiting()
        await fill(sessions)
        bus.publish(TicketCreated(1, 1, Channel.TELEGRAM))
        async with asyncio.timeout(10):
            while len(readings) < 2:
                await asyncio.sleep(0.01)
        assert readings[1].telegram == Waiting(2, ago(hours=3))
        assert readings[1].repeat == RepeatRate(3, 8)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def test_the_thresholds_are_settings(tmp_path: Path) -> None:
    assert Policy.from_settings(Settings()) == Policy()
    config = tmp_path / "callcenter.toml"
    config.write_text(
        "[wallboard]\nservice_level_target = 90\nlong_wait_seconds = 45\n"
        "repeat_contact_goal = 3\nrepeat_contact_alarm = 10\nanswer_promise_minutes = 60\n"
    )
    settings = load_settings({"CALLCENTER_WALLBOARD_LONG_WAIT_SECONDS": "30"}, config)
    policy = Policy.from_settings(settings)
    assert policy == Policy(90, 30, 3, 10, 60)
    assert policy.answer_promise == timedelta(hours=1)
    for bad in (
        {"wallboard_service_level_target": -1},
        {"wallboard_service_level_target": 101},
        {"wallboard_long_wait_seconds": 0},
        {"wallboard_repeat_contact_goal": 20},
        {"wallboard_answer_promise_minutes": -5},
    ):
        with pytest.raises(ConfigError, match="wallboard settings"):
            Policy.from_settings(Settings(**bad))

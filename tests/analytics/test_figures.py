"""The analytics figures of the hand-made data set (tests/analytics/dataset.py), worked out by
hand, on SQLite and PostgreSQL, through the rollups the refresher builds."""

from __future__ import annotations

import asyncio
import random
import statistics
from datetime import timedelta

import pytest
from sqlalchemy import select

from callcenter.analytics.audit import audit
from callcenter.analytics.figures import Filters, Table, nps, overview, repeat_contacts, transitions
from callcenter.analytics.models import TicketFact
from callcenter.analytics.refresh import Refresher
from callcenter.models import Channel, Customer, Interaction, Queue, Ticket
from tests.analytics.dataset import HOSTILE, T0, D

WEEK = timedelta(days=7)


def rows(tables: list[Table], name: str) -> list[list[object]]:
    return next(t.rows for t in tables if t.name == name)


DAY = Filters(D, D)


async def test_first_response_resolution_and_volume(sessions, data, staff) -> None:
    async with sessions() as db:
        tables = await overview(db, DAY)
    # telegram: t1 60 s, t5 240 s, t6 600 s -> average 300, median 240
    assert rows(tables, "frt") == [
        ["call", 1, 1, 30.0, 30.0],
        ["email", 1, 1, 300.0, 300.0],
        ["telegram", 3, 3, 300.0, 240.0],
    ]
    assert rows(tables, "resolution") == [
        ["call", 1, 1, 1800.0, 1800.0],
        ["email", 1, 1, 7200.0, 7200.0],
        ["telegram", 3, 1, 3600.0, 3600.0],
    ]
    assert rows(tables, "volume_channel") == [["call", 4], ["email", 1], ["telegram", 4]]
    assert rows(tables, "volume_intent") == [
        ["", 2],
        ["delivery", 2],
        ["refund", 2],
        ["size", 2],
        ["payment", 1],
    ]


async def test_service_level_and_abandon_rate_per_queue_and_hour(sessions, data) -> None:
    async with sessions() as db:
        tables = await overview(db, DAY)
    # support at 10:00: 10 s (in 20 s) and 25 s (late) answered -> 50 %.
    # sales at 11:00: one abandoned, one answered in 25 s (in 30 s); sales counts abandoned
    # calls in the denominator -> 1 / 2 = 50 % (it would be 100 % otherwise).
    assert rows(tables, "service") == [
        ["sales", 11, 2, 1, 1, 50.0, 50.0],
        ["support", 10, 2, 2, 0, 50.0, 0.0],
    ]


async def test_filters_change_the_figures(sessions, data, staff) -> None:
    anna = staff["anna"].id
    async with sessions() as db:
        by_agent = await overview(db, Filters(D, D, agent_id=anna))
        by_channel = await overview(db, Filters(D, D, channel="telegram"))
        by_queue = await overview(db, Filters(D, D, queue="sales"))
        whole_range = await overview(db, Filters(D, D + WEEK))
        day_before = await overview(db, Filters(D - timedelta(days=1), D - timedelta(days=1)))
    # Anna: her calls i2 and i10, and i1 on her ticket t1
    assert rows(by_agent, "volume_channel") == [["call", 2], ["telegram", 1]]
    assert rows(by_agent, "frt") == [["call", 1, 1, 30.0, 30.0], ["telegram", 1, 1, 60.0, 60.0]]
    assert rows(by_channel, "volume_channel") == [["telegram", 4]]
    assert rows(by_channel, "service") == []
    assert rows(by_queue, "volume_channel") == [["call", 2]]
    assert [r[0] for r in rows(by_queue, "service")] == ["sales"]
    # a week later Ivan's email and Olga's Telegram message come in
    assert rows(whole_range, "volume_channel") == [["call", 4], ["email", 2], ["telegram", 5]]
    assert all(rows(day_before, name) == [] for name in ("frt", "volume_channel", "service"))


async def test_repeat_contacts_count_the_seventh_day_but_not_a_second_later(sessions, data) -> None:
    async with sessions() as db:
        tables = await repeat_contacts(db, DAY)
        telegram_only = await repeat_contacts(db, Filters(D, D, channel="telegram"))
    # t1 (Ivan, order 123456) came back exactly 7 days after; t2 7 days and 1 s after; t3 not
    assert rows(tables, "repeat_channel") == [
        ["call", 1, 0, 0.0],
        ["email", 1, 0, 0.0],
        ["telegram", 1, 1, 100.0],
        ["", 3, 1, 33.3],
    ]
    assert rows(tables, "repeat_day") == [[D.isoformat(), 3, 1, 33.3]]
    assert rows(telegram_only, "repeat_channel") == [["telegram", 1, 1, 100.0], ["", 1, 1, 100.0]]


async def test_a_new_contact_is_picked_up_by_the_next_refresh(sessions, data) -> None:
    made, refresher = data
    olga = made.customers["Ольга Смирнова"]
    t2 = made.tickets["t2"]
    async with sessions() as db, db.begin():
        db.add(
            Interaction(
                customer_id=olga.id,
                channel=Channel.EMAIL,
                direction="in",
                intents=["refund"],
                occurred_at=t2.solved_at + timedelta(hours=1),
            )
        )
    await refresher.refresh()
    async with sessions() as db:
        fact = await db.get(TicketFact, t2.id)
        assert fact is not None and fact.repeat
        tables = await overview(db, DAY)
        again = await repeat_contacts(db, DAY)
    assert rows(tables, "volume_channel") == [["call", 4], ["email", 2], ["telegram", 4]]
    assert rows(again, "repeat_day") == [[D.isoformat(), 3, 2, 66.7]]
    # a refresh with nothing new changes nothing
    await refresher.refresh()
    async with sessions() as db:
        assert rows(await overview(db, DAY), "volume_channel") == rows(tables, "volume_channel")


async def test_nps_per_channel_and_agent(sessions, data, staff) -> None:
    async with sessions() as db:
        tables = await nps(db, DAY)
        boris = await nps(db, Filters(D, D, agent_id=staff["boris"].id))
    # t1 10 and t6 8 on Telegram; t2 6 by email; t3 9 on a call
    assert rows(tables, "nps_channel") == [
        ["call", 1, 1, 0, 0, 100.0],
        ["email", 1, 0, 0, 1, -100.0],
        ["telegram", 2, 1, 1, 0, 50.0],
    ]
    assert rows(tables, "nps_agent") == [
        [0, 1, 0, 1, 0, 0.0],
        *sorted(
            [
                [staff["anna"].id, 2, 2, 0, 0, 100.0],
                [staff["boris"].id, 1, 0, 0, 1, -100.0],
            ]
        ),
    ]
    assert rows(boris, "nps_channel") == [["email", 1, 0, 0, 1, -100.0]]


async def test_channel_transitions_within_a_day(sessions, data) -> None:
    async with sessions() as db:
        tables = await transitions(db, DAY)
        email = await transitions(db, Filters(D, D, channel="email"))
    assert rows(tables, "transitions") == [
        ["call", "call", 1, 1],  # Olga's abandoned call, then her second call
        ["call", "telegram", 1, 0],  # answered call, then a Telegram message
        ["email", "call", 1, 0],  # answered email, then a call
        ["telegram", "call", 1, 1],  # Ivan called before his message was answered
        ["telegram", "telegram", 1, 1],  # Lena wrote twice
    ]
    assert rows(email, "transitions") == [["email", "call", 1, 0]]


@pytest.mark.parametrize("exact_below", [50_000, 0])
async def test_audit_of_customers_on_two_channels(sessions, data, exact_below) -> None:
    _, refresher = data
    async with sessions() as db:
        tables = await audit(db, refresher.calendar, DAY, random.Random(5), exact_below=exact_below)
    found = rows(tables, "audit")
    names = {r[1] for r in found}
    assert names == {"Иван Петров", "Ольга Смирнова", HOSTILE}  # Lena used Telegram only
    by_customer = {name: [(r[3], r[5], r[6]) for r in found if r[1] == name] for name in names}
    assert by_customer["Иван Петров"] == [("telegram", 2400, None), ("call", 10, "shown")]
    assert by_customer["Ольга Смирнова"] == [
        ("email", 300, None),
        ("call", None, "missing"),
        ("call", 25, "none"),
    ]
    assert by_customer[HOSTILE] == [("call", 25, None), ("telegram", None, None)]


async def test_rebuild_matches_incremental(sessions, data) -> None:
    _, refresher = data
    async with sessions() as db:
        before = [t.rows for t in await overview(db, Filters(D, D + WEEK))]
        facts = list(await db.scalars(select(TicketFact).order_by(TicketFact.ticket_id)))
    await refresher.rebuild()
    async with sessions() as db:
        assert [t.rows for t in await overview(db, Filters(D, D + WEEK))] == before
        again = list(await db.scalars(select(TicketFact).order_by(TicketFact.ticket_id)))
    assert [(f.ticket_id, f.repeat, f.frt_seconds) for f in again] == [
        (f.ticket_id, f.repeat, f.frt_seconds) for f in facts
    ]


async def test_medians_read_from_buckets_equal_the_plain_median(sessions, staff) -> None:
    """Many durations sharing buckets, odd and even counts, middle values across buckets."""
    rng = random.Random(3)
    samples = [
        [100, 101, 102, 103, 500, 1000],
        [7],
        [59, 60, 61, 62],
        *[[rng.choice([rng.randrange(5000), rng.randrange(200, 260)]) for _ in range(n)]
          for n in (2, 9, 40, 41)],
    ]  # fmt: skip
    async with sessions() as db, db.begin():
        customer = Customer(display_name="x")
        db.add(customer)
        await db.flush()
        for n, durations in enumerate(samples):
            opened = T0 + timedelta(days=n)
            for seconds in durations:
                db.add(
                    Ticket(
                        customer_id=customer.id,
                        channel=Channel.EMAIL,
                        created_at=opened,
                        updated_at=opened,
                        first_response_at=opened + timedelta(seconds=seconds),
                        solved_at=opened + timedelta(seconds=2 * seconds),
                    )
                )
    await Refresher(sessions, "Europe/Moscow").refresh()
    async with sessions() as db:
        for n, durations in enumerate(samples):
            day = D + timedelta(days=n)
            [frt, resolution, *_] = await overview(db, Filters(day, day))
            assert frt.rows == [
                ["email", len(durations), len(durations), round(statistics.mean(durations), 1),
                 statistics.median(durations)]
            ]  # fmt: skip
            assert resolution.rows[0][4] == 2 * statistics.median(durations)


async def test_the_supervised_refresher_follows_new_contacts_until_stopped(sessions, data) -> None:
    made, _ = data
    refresher = Refresher(sessions, "Europe/Moscow", interval=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(refresher.run(stop))
    async with sessions() as db, db.begin():
        db.add(
            Interaction(
                customer_id=made.customers["Лена Котова"].id,
                channel=Channel.EMAIL,
                direction="in",
                occurred_at=T0 + timedelta(hours=5),
            )
        )
    for _ in range(200):
        async with sessions() as db:
            if rows(await overview(db, DAY), "volume_channel")[1] == ["email", 2]:
                break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the refresher never counted the new email")
    stop.set()
    await asyncio.wait_for(running, 10)


async def test_another_time_zone_rebuilds_the_local_days(sessions, data) -> None:
    # 10:00 in Moscow is 02:00 the same day in New York; Olga's 11:00 calls are at 03:00
    await Refresher(sessions, "America/New_York").refresh()
    async with sessions() as db:
        service = rows(await overview(db, DAY), "service")
    assert [(r[0], r[1]) for r in service] == [("sales", 3), ("support", 2)]


async def test_a_changed_service_level_threshold_recounts_the_calls(sessions, data) -> None:
    _, refresher = data
    async with sessions() as db, db.begin():
        sales = await db.scalar(select(Queue).where(Queue.name == "sales"))
        sales.service_level_seconds = 20  # Olga's second call waited 25 s
    await refresher.refresh()
    async with sessions() as db:
        service = rows(await overview(db, DAY), "service")
    assert service[0] == ["sales", 11, 2, 1, 1, 0.0, 50.0]

"""Callback attempts (outbound calls stored as no answer, busy or failed) in the analytics: they
are never inbound calls of a queue, never an answer to the customer, and an answered callback
is one."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from callcenter.analytics.audit import audit
from callcenter.analytics.figures import Filters, overview, transitions
from callcenter.models import Call, CallOutcome, Channel, Direction, Interaction
from tests.analytics.dataset import T0, D
from tests.analytics.test_figures import DAY, rows

MIN = timedelta(minutes=1)
UNREACHED = [CallOutcome.NO_ANSWER, CallOutcome.BUSY, CallOutcome.FAILED]


async def _attempt(db, customer_id: int, at, outcome: CallOutcome, n: int) -> None:  # type: ignore[no-untyped-def]
    """A callback attempt the way the dialler stores it, in the sales queue."""
    interaction = Interaction(
        customer_id=customer_id,
        channel=Channel.CALL,
        direction=Direction.OUTBOUND,
        text=f"Обратный звонок на +79161234567: {outcome.value}",
        occurred_at=at,
    )
    db.add(interaction)
    await db.flush()
    answered = outcome is CallOutcome.ANSWERED
    db.add(
        Call(
            interaction_id=interaction.id,
            linkedid=f"callback-{n}",
            queue="sales",
            agent_endpoint="PJSIP/1001",
            caller_number="+79161234567",
            outcome=outcome,
            talk_seconds=60 if answered else 0,
            started_at=at,
            answered_at=at if answered else None,
            ended_at=at + MIN,
        )
    )


async def test_unreached_attempts_count_as_no_inbound_call_of_their_queue(sessions, data) -> None:
    made, refresher = data
    async with sessions() as db:
        before = await overview(db, DAY)
    olga = made.customers["Ольга Смирнова"]
    async with sessions() as db, db.begin():
        for n, outcome in enumerate(UNREACHED):  # sales, 11:00 local, like her abandoned call
            await _attempt(db, olga.id, T0 + 61 * MIN + n * MIN, outcome, n)
    await refresher.refresh()
    async with sessions() as db:
        after = await overview(db, DAY)
    # sales at 11:00 is still 2 calls, 1 answered, 1 abandoned; call volume still 4
    assert (
        rows(after, "service")
        == rows(before, "service")
        == [
            ["sales", 11, 2, 1, 1, 50.0, 50.0],
            ["support", 10, 2, 2, 0, 50.0, 0.0],
        ]
    )
    assert rows(after, "volume_channel") == [["call", 4], ["email", 1], ["telegram", 4]]


@pytest.mark.parametrize(
    ("outcome", "unanswered"),
    [*((o, 1) for o in UNREACHED), (CallOutcome.ANSWERED, 0)],
)
async def test_only_an_answered_callback_answers_the_customer_before_they_write_again(
    sessions, data, outcome: CallOutcome, unanswered: int
) -> None:
    made, refresher = data
    lena = made.customers["Лена Котова"]
    async with sessions() as db, db.begin():  # between her two Telegram messages
        await _attempt(db, lena.id, T0 + 2 * 60 * MIN + 30 * MIN, outcome, 1)
    await refresher.refresh()
    async with sessions() as db:
        moves = rows(await transitions(db, Filters(D, D, channel="telegram")), "transitions")
    assert ["telegram", "telegram", 1, unanswered] in moves


@pytest.mark.parametrize(
    ("outcome", "response"),
    [*((o, 2400) for o in UNREACHED), (CallOutcome.ANSWERED, 300)],
)
async def test_the_audit_takes_an_unreached_callback_for_no_response(
    sessions, data, outcome: CallOutcome, response: int
) -> None:
    made, refresher = data
    ivan = made.customers["Иван Петров"]
    async with sessions() as db, db.begin():  # 5 min after his Telegram message (answered at 40)
        await _attempt(db, ivan.id, T0 + 5 * MIN, outcome, 1)
    await refresher.refresh()
    async with sessions() as db:
        tables = await audit(db, refresher.calendar, DAY, random.Random(5))
    path = [(r[3], r[4], r[5]) for r in rows(tables, "audit") if r[1] == "Иван Петров"]
    # the attempt is outbound: not a step of his path, only (perhaps) the answer to his message
    assert path == [("telegram", "in", response), ("call", "in", 10)]

"""Changes the refresher cannot see by new ids or ticket times (a merge, an erasure), its
restart, and ``callcenter analytics rebuild``, on the hand-made data set."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.analytics import refresh
from callcenter.analytics.figures import Filters, nps, overview, repeat_contacts, transitions
from callcenter.analytics.models import ContactRollup, DirtyCustomer, RefreshState
from callcenter.analytics.refresh import Refresher
from callcenter.automation.models import SurveyAnswer
from callcenter.domain.customers import merge_customers
from callcenter.domain.privacy import erase_customer
from callcenter.models import Call, CallOutcome, Channel, Customer, Interaction, Ticket, utcnow
from tests.analytics.dataset import T0, D
from tests.analytics.test_figures import DAY, rows

HOUR = timedelta(hours=1)


async def _dirty(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as db:
        return await db.scalar(select(func.count()).select_from(DirtyCustomer))


async def test_a_merge_shows_the_telegram_to_call_transition(sessions, data) -> None:
    made, refresher = data
    lena = made.customers["Лена Котова"]
    async with sessions() as db, db.begin():
        phone = Customer(display_name="+7 916 000-00-00")
        db.add(phone)
        await db.flush()
        # an hour after Lena's unanswered Telegram message, from a number not yet hers
        call = Interaction(
            customer_id=phone.id,
            channel=Channel.CALL,
            direction="in",
            occurred_at=T0 + 4 * HOUR,
        )
        db.add(call)
        await db.flush()
        db.add(
            Call(
                interaction_id=call.id,
                linkedid="call-phone",
                queue="support",
                outcome=CallOutcome.ANSWERED,
                wait_seconds=5,
                started_at=call.occurred_at,
            )
        )
    await refresher.refresh()
    async with sessions() as db:
        assert ["telegram", "call", 1, 1] in rows(await transitions(db, DAY), "transitions")
    async with sessions() as db, db.begin():
        await merge_customers(db, phone.id, lena.id)
    assert await _dirty(sessions) == 1  # committed with the merge
    await refresher.refresh()
    async with sessions() as db:
        # Ivan's call after his message, and now Lena's
        assert ["telegram", "call", 2, 2] in rows(await transitions(db, DAY), "transitions")
    assert await _dirty(sessions) == 0


async def test_an_erasure_recounts_the_customer(sessions, data) -> None:
    made, refresher = data
    async with sessions() as db, db.begin():
        await erase_customer(db, made.customers["Иван Петров"].id)
    await refresher.refresh()
    async with sessions() as db:
        tables = await repeat_contacts(db, DAY)
    # Ivan came back about order 123456; with his order numbers erased that is no repeat
    assert rows(tables, "repeat_channel") == [
        ["call", 1, 0, 0.0],
        ["email", 1, 0, 0.0],
        ["telegram", 1, 0, 0.0],
        ["", 3, 0, 0.0],
    ]
    assert await _dirty(sessions) == 0


async def test_a_restart_examines_only_new_and_uncommitted_ids(
    sessions, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, refresher = data
    recounted: list[date] = []
    original = refresh.rebuild_contacts_day

    async def spy(session: AsyncSession, calendar: refresh.Calendar, day: date) -> None:
        recounted.append(day)
        await original(session, calendar, day)

    monkeypatch.setattr(refresh, "rebuild_contacts_day", spy)
    olga = made.customers["Ольга Смирнова"].id

    def email(at_id: int, day_offset: int) -> Interaction:
        return Interaction(
            id=at_id,
            customer_id=olga,
            channel=Channel.EMAIL,
            direction="in",
            occurred_at=T0 + timedelta(days=day_offset),
        )

    async with sessions() as db:
        top = await db.scalar(select(func.max(Interaction.id)))
    # id top + 2 commits first; top + 1 is still in an open transaction at the next refresh
    async with sessions() as db, db.begin():
        db.add(email(top + 2, 1))
    await refresher.refresh()
    assert recounted == [D + timedelta(days=1)]
    async with sessions() as db:
        state = await db.get(RefreshState, "interactions")
        assert state.value == top + 2 and top + 1 in state.gaps

    restarted = Refresher(sessions, "Europe/Moscow")
    recounted.clear()
    await restarted.refresh()
    assert recounted == []  # nothing new: no look-back over old days

    async with sessions() as db, db.begin():
        db.add(email(top + 1, 0))  # the late commit
    await Refresher(sessions, "Europe/Moscow").refresh()
    assert recounted == [D]
    async with sessions() as db:
        assert rows(await overview(db, DAY), "volume_channel")[1] == ["email", 2]


async def _cli(database_url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env |= {"CALLCENTER_DATABASE_URL": database_url, "CALLCENTER_TIMEZONE": "Europe/Moscow"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcenter.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.parametrize("since", [None, D.isoformat()])
async def test_the_rebuild_command(sessions, data, database_url, since) -> None:
    async with sessions() as db:
        expected = [t.rows for t in await overview(db, DAY)]
    async with sessions() as db, db.begin():
        await db.execute(delete(ContactRollup))  # stale rollups
    async with sessions() as db:
        assert rows(await overview(db, DAY), "volume_channel") == []
    out = await _cli(database_url, "analytics", "rebuild", *(["--since", since] if since else []))
    assert out.startswith("analytics rebuilt")
    async with sessions() as db:
        assert [t.rows for t in await overview(db, DAY)] == expected


async def test_rebuild_since_leaves_earlier_days(sessions, data) -> None:
    _, refresher = data
    async with sessions() as db, db.begin():
        await db.execute(delete(ContactRollup))
    await refresher.rebuild_since(D + timedelta(days=1))
    async with sessions() as db:
        assert rows(await overview(db, DAY), "volume_channel") == []
        assert rows(await overview(db, Filters(D, D + timedelta(days=7))), "volume_channel")


async def test_nps_follows_new_answers_and_a_reassigned_ticket(sessions, data, staff) -> None:
    made, refresher = data
    t5 = made.tickets["t5"]
    async with sessions() as db, db.begin():
        db.add(
            SurveyAnswer(
                ticket_id=t5.id,
                customer_id=t5.customer_id,
                score=3,
                channel="telegram",
                answered_at=T0 + 6 * HOUR,
            )
        )
    await refresher.refresh()
    async with sessions() as db:
        tables = await nps(db, DAY)
    # Telegram: t1 (10), t6 (8) and now t5 (3); t6 and t5 are nobody's
    assert rows(tables, "nps_channel")[-1] == ["telegram", 3, 1, 1, 1, 0.0]
    assert rows(tables, "nps_agent")[0] == [0, 2, 0, 1, 1, -50.0]

    async with sessions() as db, db.begin():
        ticket = await db.get(Ticket, t5.id)
        ticket.assignee_id = staff["boris"].id
        ticket.updated_at = utcnow()
    await Refresher(sessions, "Europe/Moscow").refresh()
    async with sessions() as db:
        boris = await nps(db, Filters(D, D, agent_id=staff["boris"].id))
    # Olga's 6 for t2 and the 3 for t5
    assert rows(boris, "nps_channel") == [
        ["email", 1, 0, 0, 1, -100.0],
        ["telegram", 1, 0, 0, 1, -100.0],
    ]

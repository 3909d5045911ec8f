"""Nothing lost between a commit and its bus handler: the catch-up scan queues what the handler
never did (the process died right after the commit), and neither a replay nor the handler
running late doubles a push or a webhook."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import aiohttp
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.crm.bitrix import Bitrix24
from callcenter.crm.catchup import GRACE, CatchUp
from callcenter.crm.feed import Feed
from callcenter.crm.links import RecordingLinks
from callcenter.crm.models import FeedCheckpoint
from callcenter.crm.sender import CrmSender
from callcenter.crm.webhooks import EVENTS, SignedWebhookSender
from callcenter.domain.tickets import record_reply, set_status
from callcenter.health import HealthRegistry
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    OutboxStatus,
    Ticket,
    TicketStatus,
    utcnow,
)
from callcenter.outbox import OutboxWorker
from tests.automation.helpers import (
    SECRET,
    Clock,
    email_message,
    make_call,
    make_customer,
    outbox_rows,
    receive,
)
from tests.crm.fakes import FakeBitrix24, Receiver
from tests.crm.test_webhooks import SECRET as HOOK_SECRET
from tests.crm.test_webhooks import subscribe


def kinds(rows) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(
        row.payload["event"]["type"] if row.channel == "signed_webhook" else row.payload["kind"]
        for row in rows
    )


async def test_changes_whose_handler_never_ran_are_queued_once_and_delivered(
    sessions: async_sessionmaker[AsyncSession],
    bitrix: Bitrix24,
    bitrix_fake: FakeBitrix24,
    receiver: tuple[Receiver, str],
    http: aiohttp.ClientSession,
) -> None:
    hook, url = receiver
    hook.secret = HOOK_SECRET
    await subscribe(sessions, url, list(EVENTS))
    clock = Clock(utcnow())
    feed = Feed(sessions, crm=True, links=RecordingLinks("https://help.example.ru", SECRET))
    catchup = CatchUp(sessions, feed, now=clock)
    assert await catchup.run_once() == 0  # the checkpoints start at the deployment

    # Committed, but the process died before any bus handler ran:
    first = await receive(sessions, email_message("Где мой заказ 12345?", "m1@example.ru"))
    second = await receive(sessions, email_message("Уже неделю жду", "m2@example.ru"))
    async with sessions() as session, session.begin():
        _, replied = await record_reply(
            session,
            first.ticket.id,
            channel=Channel.EMAIL,
            text="Завтра",
            at=utcnow(),
            agent_id=None,
        )
        solved = await set_status(session, first.ticket.id, TicketStatus.SOLVED, at=utcnow())
    customer = await make_customer(sessions, "Пётр", phone="+79167654321")
    call_id, _ = await make_call(
        sessions, customer, outcome=CallOutcome.ANSWERED, caller="+79167654321", with_ticket=False
    )
    async with sessions() as session, session.begin():
        await session.execute(
            update(Call).where(Call.interaction_id == call_id).values(recording_path="a.wav")
        )

    assert await outbox_rows(sessions) == []
    await catchup.run_once()
    queued = await outbox_rows(sessions)
    assert kinds(queued) == {
        "ticket.created": 1,
        "message.received": 2,
        "ticket.solved": 1,
        "call.ended": 1,
        "ticket": 1,
        "message": 1,  # the follow-up; the agent's reply had no agent, so it is not known here
        "call": 1,
    }

    # A replay, the handlers running late after all, and the checkpoint passing: no doubles.
    await catchup.run_once()
    bus = Bus()
    feed.subscribe(bus)
    for event in (*first.events, *second.events, replied, solved):
        bus.publish(event)
    await bus.drain()
    restarted = CatchUp(sessions, Feed(sessions, crm=True, links=feed.links), now=clock)
    assert await restarted.run_once() == 5  # a new process reads them all again (not the reply)
    clock.advance(seconds=GRACE.total_seconds() + 600)
    await catchup.run_once()
    await catchup.run_once()
    after = await outbox_rows(sessions)
    assert kinds(after) == kinds(queued) + Counter({"message": 1})  # the reply, from its event
    async with sessions() as session:
        checkpoints = {c.source: c for c in await session.scalars(select(FeedCheckpoint))}
    assert checkpoints["calls"].last_id == call_id
    assert checkpoints["tickets"].last_id == first.ticket.id

    worker_clock = Clock(utcnow())
    senders = [
        SignedWebhookSender(http, sessions, health=HealthRegistry(), now=worker_clock),
        CrmSender(bitrix, sessions, health=HealthRegistry()),
    ]
    worker = OutboxWorker(sessions, senders, now=worker_clock)
    for _ in range(10):
        if not await worker.run_once():
            break
        worker_clock.advance(seconds=60)
    assert {r.status for r in await outbox_rows(sessions)} == {OutboxStatus.SENT}
    events = [a["event"] for a in hook.accepted]
    assert len({e["id"] for e in events}) == len(events) == 5
    [call] = [e for e in events if e["type"] == "call.ended"]
    assert "/recordings/" in call["data"]["call"]["recording_url"]
    assert len(bitrix_fake.leads) == 1 and len(bitrix_fake.external_calls) == 1


async def test_a_ticket_solved_again_after_a_reopening_is_a_new_event(
    sessions: async_sessionmaker[AsyncSession], receiver: tuple[Receiver, str]
) -> None:
    _, url = receiver
    await subscribe(sessions, url, ["ticket.solved"])
    clock = Clock(utcnow())
    catchup = CatchUp(sessions, Feed(sessions, crm=False), now=clock)
    await catchup.run_once()
    result = await receive(sessions, email_message("Вопрос", "m1@example.ru"))
    for status, later in (
        (TicketStatus.SOLVED, 0),
        (TicketStatus.OPEN, 1),
        (TicketStatus.SOLVED, 2),
    ):
        async with sessions() as session, session.begin():
            at = utcnow() + timedelta(seconds=later)
            await set_status(session, result.ticket.id, status, at=at)
        await catchup.run_once()
        await catchup.run_once()
    assert kinds(await outbox_rows(sessions)) == {"ticket.solved": 2}


async def test_a_lower_id_committed_late_is_still_read_and_each_row_handled_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock(utcnow())
    feed = Feed(sessions, crm=True)
    catchup = CatchUp(sessions, feed, now=clock)
    await catchup.run_once()
    customer = await make_customer(sessions, "Пётр", phone="+79167654321")
    async with sessions() as session:
        base = (await session.scalar(select(func.max(Ticket.id)))) or 0

    async def ticket(ticket_id: int) -> None:
        async with sessions() as session, session.begin():
            session.add(Ticket(id=ticket_id, customer_id=customer, channel=Channel.CALL))

    await ticket(base + 110)
    assert await catchup.run_once() == 1
    clock.advance(seconds=60)
    await ticket(base + 105)  # its transaction began first and committed late
    assert await catchup.run_once() == 1  # only the new row is handled
    clock.advance(seconds=GRACE.total_seconds())
    assert await catchup.run_once() == 0
    rows = await outbox_rows(sessions)
    assert sorted(r.payload["ticket"]["ticket_id"] for r in rows) == [base + 105, base + 110]
    async with sessions() as session:
        assert (await session.get(FeedCheckpoint, "tickets")).last_id == base + 110

"""End to end: domain events → outbox → the CRM sender → the fake CRM, with retries and /status."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.telephony.events import CallRecorded
from callcenter.crm.bitrix import Bitrix24
from callcenter.crm.feed import Feed
from callcenter.crm.links import RecordingLinks
from callcenter.crm.models import CrmRecord, WebhookSubscription
from callcenter.crm.sender import CrmSender
from callcenter.crm.webhooks import EVENTS
from callcenter.crm.zoho import ZohoCrm
from callcenter.domain.privacy import erase_customer
from callcenter.domain.tickets import record_reply
from callcenter.health import HealthRegistry, State
from callcenter.models import Call, CallOutcome, Channel, OutboxStatus, utcnow
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
from tests.crm.fakes import QUERY_LIMIT, SERVER_ERROR, Failure, FakeBitrix24, FakeZoho

PUBLIC_URL = "https://help.example.ru"


async def deliver(feed: Feed, *events: object) -> None:
    bus = Bus()
    feed.subscribe(bus)
    for event in events:
        bus.publish(event)
    await bus.drain()


def state(health: HealthRegistry, name: str) -> State:
    return {h.name: h.state for h in health.snapshot()}[name]


async def test_a_new_ticket_becomes_a_lead_and_a_follow_up_a_comment_on_it(
    sessions: async_sessionmaker[AsyncSession], bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    feed = Feed(sessions, crm=True)
    first = await receive(
        sessions, email_message("Где мой заказ 12345?", "m1@example.ru", subject="Заказ 12345")
    )
    await deliver(feed, *first.events)

    [row] = await outbox_rows(sessions)  # the first message travels with the ticket's lead
    assert (row.channel, row.payload["kind"]) == ("crm", "ticket")
    health = HealthRegistry()
    clock = Clock(utcnow())
    worker = OutboxWorker(sessions, [CrmSender(bitrix, sessions, health=health)], now=clock)
    bitrix_fake.failures.append(QUERY_LIMIT)
    assert await worker.run_once() == 1
    [row] = await outbox_rows(sessions)
    assert row.status is OutboxStatus.PENDING and "QUERY_LIMIT_EXCEEDED" in row.last_error
    assert state(health, "crm") is State.FAILING
    clock.advance(seconds=2)
    assert await worker.run_once() == 1

    [lead_id] = bitrix_fake.leads
    lead = bitrix_fake.leads[lead_id]
    assert lead["TITLE"] == f"#{first.ticket.id} Заказ 12345"
    assert lead["COMMENTS"] == "Где мой заказ 12345?"
    assert lead["EMAIL"] == [{"VALUE": "ivan@example.ru", "VALUE_TYPE": "WORK"}]
    assert state(health, "crm") is State.OK

    second = await receive(sessions, email_message("Уже неделю жду", "m2@example.ru"))
    assert second.ticket.id == first.ticket.id
    await deliver(feed, *second.events)
    clock.advance(seconds=60)
    assert await worker.run_once() == 1
    assert bitrix_fake.comments == [
        {"ENTITY_ID": str(lead_id), "ENTITY_TYPE": "lead", "COMMENT": "Уже неделю жду"}
    ]
    async with sessions() as session, session.begin():
        _, replied = await record_reply(
            session,
            first.ticket.id,
            channel=Channel.EMAIL,
            text="Заказ передан в доставку, завтра будет у вас",
            at=utcnow(),
        )
    await deliver(feed, replied)
    clock.advance(seconds=60)
    assert await worker.run_once() == 1
    assert bitrix_fake.comments[-1] == {
        "ENTITY_ID": str(lead_id),
        "ENTITY_TYPE": "lead",
        "COMMENT": "Ответ оператора (email):\nЗаказ передан в доставку, завтра будет у вас",
    }
    assert bitrix_fake.methods().count("crm.lead.add") == 1
    assert [r.status for r in await outbox_rows(sessions)] == [OutboxStatus.SENT] * 3
    async with sessions() as session:
        [record] = await session.scalars(select(CrmRecord))
    assert (record.local_kind, record.local_id, record.remote_type, record.remote_id) == (
        "ticket",
        first.ticket.id,
        "lead",
        str(lead_id),
    )


async def test_an_ended_call_is_registered_and_finished_with_its_recording(
    sessions: async_sessionmaker[AsyncSession], bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    customer = await make_customer(sessions, phone="+79161234567")
    at = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
    interaction_id, _ = await make_call(
        sessions, customer, outcome=CallOutcome.ANSWERED, at=at, with_ticket=False
    )
    async with sessions() as session, session.begin():
        await session.execute(
            update(Call)
            .where(Call.interaction_id == interaction_id)
            .values(talk_seconds=95, recording_path="2026/11/28/call.wav")
        )
    recorded = CallRecorded(
        interaction_id,
        customer,
        None,
        "linked",
        "support",
        "+79161234567",
        CallOutcome.ANSWERED,
        45,
        at,
    )
    links = RecordingLinks(PUBLIC_URL, SECRET)
    await deliver(Feed(sessions, crm=True, links=links), recorded)

    clock = Clock(utcnow())
    sender = CrmSender(bitrix, sessions, health=HealthRegistry())
    worker = OutboxWorker(sessions, [sender], now=clock)
    bitrix_fake.failures_for["telephony.externalcall.finish"] = [SERVER_ERROR]
    assert await worker.run_once() == 1
    clock.advance(seconds=2)
    assert await worker.run_once() == 1

    assert bitrix_fake.methods() == [
        "telephony.externalcall.register",
        "telephony.externalcall.finish",  # HTTP 500: the row is retried ...
        "telephony.externalcall.finish",  # ... from the step that failed
        "telephony.externalCall.attachRecord",
    ]
    [row] = await outbox_rows(sessions)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    [call] = bitrix_fake.external_calls.values()
    assert call["register"]["PHONE_NUMBER"] == "+79161234567"
    assert call["register"]["CALL_START_DATE"] == "2026-11-28T10:15:00+00:00"
    assert (call["finish"]["DURATION"], call["finish"]["STATUS_CODE"]) == (95, "200")
    record_url = urlsplit(call["record"]["RECORD_URL"])
    assert record_url._replace(query="").geturl() == f"{PUBLIC_URL}/recordings/{interaction_id}"
    query = dict(parse_qsl(record_url.query))
    assert links.valid(interaction_id, query["expires"], query["signature"])


async def test_zoho_gets_the_lead_after_a_token_refresh_and_a_server_error(
    sessions: async_sessionmaker[AsyncSession], zoho: ZohoCrm, zoho_fake: FakeZoho
) -> None:
    zoho_fake.valid_tokens.add("1000.stale")
    zoho._token = "1000.stale"
    zoho_fake.expire_tokens()
    first = await receive(
        sessions, email_message("Верните деньги", "z1@example.ru", subject="Возврат")
    )
    await deliver(Feed(sessions, crm=True), *first.events)

    clock = Clock(utcnow())
    worker = OutboxWorker(sessions, [CrmSender(zoho, sessions, health=HealthRegistry())], now=clock)
    zoho_fake.failures.append(
        Failure(500, {"code": "INTERNAL_ERROR", "details": {}, "status": "error"})
    )
    assert await worker.run_once() == 1
    [row] = await outbox_rows(sessions)
    assert row.status is OutboxStatus.PENDING and "INTERNAL_ERROR" in row.last_error
    assert zoho_fake.token_requests == 1  # the 401 refreshed the token before the 500
    clock.advance(seconds=2)
    assert await worker.run_once() == 1

    [lead] = zoho_fake.records["Leads"]
    assert lead["Email"] == "ivan@example.ru" and lead["Last_Name"] == "Иван Петров"
    assert "Верните деньги" in lead["Description"]
    [row] = await outbox_rows(sessions)
    assert row.status is OutboxStatus.SENT and row.external_id == f"Leads:{lead['id']}"


async def test_without_a_crm_nothing_is_queued_for_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await receive(sessions, email_message("Вопрос", "n1@example.ru"))
    await deliver(Feed(sessions, crm=False), *first.events)
    assert await outbox_rows(sessions) == []


async def test_erasing_the_customer_clears_their_crm_pushes_and_webhook_events(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        hook = WebhookSubscription(url="https://h.example/", secret="s", events=list(EVENTS))
        session.add(hook)
        await session.flush()
        hook_id = hook.id
    first = await receive(sessions, email_message("Мой адрес: Ленина 1", "e1@example.ru"))
    feed = Feed(sessions, crm=True)
    await deliver(feed, *first.events)
    others = await make_customer(sessions, "Пётр", phone="+79167654321")
    for customer, caller in ((first.customer.id, "+79161234567"), (others, "+79167654321")):
        call, _ = await make_call(
            sessions, customer, outcome=CallOutcome.ANSWERED, caller=caller, with_ticket=False
        )
        async with sessions() as session, session.begin():
            await feed.call(session, call)  # a call without a ticket
    assert {r.channel for r in await outbox_rows(sessions)} == {"crm", "signed_webhook"}

    async with sessions() as session, session.begin():
        await erase_customer(session, first.customer.id)

    rows = await outbox_rows(sessions)
    erased = [r for r in rows if r.payload == {}]
    # the lead, ticket.created, message.received, and the call: call.ended and its CRM push
    assert len(erased) == 5 and all(r.status is OutboxStatus.FAILED for r in erased)
    kept = [r for r in rows if r.payload]
    assert sorted(r.recipient for r in kept) == [
        f"customer:{others}",
        f"subscription:{hook_id}:customer:{others}",
    ]
    assert all(r.status is OutboxStatus.PENDING for r in kept)

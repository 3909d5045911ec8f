"""Each default rule end to end: events in, the outbox rows (and callback tasks) out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import pending_callbacks
from callcenter.automation.engine import Engine
from callcenter.automation.events import CallAbandoned, WrapUpSaved
from callcenter.automation.timers import TimerWorker
from callcenter.bus import Bus
from callcenter.channels.telegram.models import CallbackRequest
from callcenter.domain.tickets import record_reply
from callcenter.models import CallOutcome, Channel, Role, Timer, TimerStatus, User
from tests.automation.helpers import (
    T0,
    Clock,
    email_message,
    firing_log,
    make_call,
    make_customer,
    outbox_rows,
    receive,
    telegram_message,
)

ACK = "Мы получили ваш запрос. Ответ пришлём в течение 2 часов."


async def test_a_new_email_request_is_acknowledged_by_email_in_russian(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    bus = Bus()
    engine.subscribe(bus)
    result = await receive(
        sessions,
        email_message(
            "Здравствуйте, где мой заказ 12345?",
            "<q1@mail.example.ru>",
            subject="Заказ <12345>",
            name="Иван <b>Петров</b>",
        ),
    )
    for event in result.events:
        bus.publish(event)
    await bus.drain()

    [row] = await outbox_rows(sessions)
    ticket = result.ticket.id
    assert (row.channel, row.recipient, row.ticket_id) == ("email", "ivan@example.ru", ticket)
    payload = row.payload
    assert payload["subject"] == f"Мы получили ваш запрос [#{ticket}]"
    assert ACK in payload["text"]
    assert "Здравствуйте, Иван <b>Петров</b>!" in payload["text"]
    assert "Ваш запрос: «Заказ <12345>»" in payload["text"]
    assert ACK in payload["html"]
    assert "Иван &lt;b&gt;Петров&lt;/b&gt;" in payload["html"]
    assert "«Заказ &lt;12345&gt;»" in payload["html"]
    assert payload["in_reply_to"] == "<q1@mail.example.ru>"
    assert payload["auto"] is True and payload["to_name"] == "Иван <b>Петров</b>"
    [firing] = await firing_log(sessions)
    assert firing.outcome == "done" and firing.ticket_id == ticket


async def test_an_english_customer_gets_the_english_acknowledgement(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    result = await receive(
        sessions, email_message("Where is my order?", "<q2@x.example>", language="en")
    )
    for event in result.events:
        await engine.handle(event)
    [row] = await outbox_rows(sessions)
    assert "We have received your request and will answer within 2 hours." in row.payload["text"]


async def test_no_acknowledgement_without_an_email_address_nor_for_a_follow_up(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    first = await receive(sessions, telegram_message("Где заказ 12345?", 1))
    for event in first.events:
        await engine.handle(event)
    assert await outbox_rows(sessions) == []
    assert await firing_log(sessions) == []

    await make_customer(sessions, "Олег", email="oleg@example.ru")
    mail = await receive(sessions, email_message("Заказ 777", "<a@x>", address="oleg@example.ru"))
    follow_up = await receive(
        sessions, email_message("И ещё про заказ 777", "<b@x>", address="oleg@example.ru")
    )
    for event in [*mail.events, *follow_up.events]:
        await engine.handle(event)
    assert [row.recipient for row in await outbox_rows(sessions)] == ["oleg@example.ru"]


async def _unanswered_telegram(sessions: async_sessionmaker[AsyncSession], engine: Engine) -> int:
    await make_customer(sessions, "Иван Петров", email="ivan@example.ru", telegram=7001)
    result = await receive(sessions, telegram_message("Заказ 12345 не пришёл", 1))
    later = await receive(sessions, telegram_message("Ау?", 2, at=T0 + timedelta(minutes=30)))
    for event in [*result.events, *later.events]:
        await engine.handle(event)
    return result.ticket.id


async def test_a_telegram_message_unanswered_for_two_hours_gets_an_apology_and_a_call_offer(
    sessions: async_sessionmaker[AsyncSession], engine: Engine, worker: TimerWorker, clock: Clock
) -> None:
    ticket = await _unanswered_telegram(sessions, engine)
    ack = await outbox_rows(sessions)
    assert [row.payload["subject"] for row in ack] == [f"Мы получили ваш запрос [#{ticket}]"]

    clock.advance(hours=2, seconds=-1)  # two hours after the first message, less a second
    assert await worker.run_once() == 0
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0

    email, telegram = (await outbox_rows(sessions))[1:]
    assert email.recipient == "ivan@example.ru"
    assert email.payload["subject"] == f"Извините за ожидание [#{ticket}]"
    assert (
        "Простите, что мы до сих пор не ответили на ваше сообщение в Telegram"
        in (email.payload["text"])
    )
    assert telegram.channel == "telegram" and telegram.recipient == "7001"
    assert telegram.payload == {
        "chat_id": 7001,
        "text": "Извините, что ответ задерживается. Хотите, мы вам позвоним? Нажмите кнопку ниже.",
        "ticket_id": ticket,
        "reply_markup": {
            "inline_keyboard": [[{"text": "📞 Позвоните мне", "callback_data": "callme"}]]
        },
    }
    unanswered = [f for f in await firing_log(sessions) if f.trigger == "ticket_unanswered"]
    assert [f.outcome for f in unanswered] == ["done"]


async def test_an_agent_answer_in_time_cancels_the_timer(
    sessions: async_sessionmaker[AsyncSession], engine: Engine, worker: TimerWorker, clock: Clock
) -> None:
    ticket = await _unanswered_telegram(sessions, engine)
    async with sessions() as session, session.begin():
        _, replied = await record_reply(
            session, ticket, channel=Channel.TELEGRAM, text="Проверяем", at=T0 + timedelta(hours=1)
        )
    await engine.handle(replied)

    clock.advance(hours=5)
    assert await worker.run_once() == 0
    assert len(await outbox_rows(sessions)) == 1  # the acknowledgement only
    async with sessions() as session:
        statuses = list(await session.scalars(select(Timer.status)))
    assert statuses == [TimerStatus.CANCELLED]


async def test_a_timer_that_fires_after_an_unannounced_answer_sends_nothing(
    sessions: async_sessionmaker[AsyncSession], engine: Engine, worker: TimerWorker, clock: Clock
) -> None:
    ticket = await _unanswered_telegram(sessions, engine)
    async with sessions() as session, session.begin():  # the AgentReplied event got lost
        await record_reply(
            session, ticket, channel=Channel.TELEGRAM, text="Ответ", at=T0 + timedelta(hours=1)
        )
    clock.advance(hours=3)
    assert await worker.run_once() == 1
    assert len(await outbox_rows(sessions)) == 1
    assert [f.trigger for f in await firing_log(sessions)] == ["ticket_created"]


async def test_a_new_message_after_an_answer_starts_a_new_wait(
    sessions: async_sessionmaker[AsyncSession], engine: Engine, worker: TimerWorker, clock: Clock
) -> None:
    ticket = await _unanswered_telegram(sessions, engine)
    async with sessions() as session, session.begin():
        _, replied = await record_reply(
            session, ticket, channel=Channel.TELEGRAM, text="Ответ", at=T0 + timedelta(hours=1)
        )
    await engine.handle(replied)
    again = await receive(
        sessions, telegram_message("Всё ещё не пришёл", 3, at=T0 + timedelta(hours=4))
    )
    assert again.ticket.id == ticket
    for event in again.events:
        await engine.handle(event)
    clock.advance(hours=6, seconds=-1)  # two hours after the new message, less a second
    assert await worker.run_once() == 0
    clock.advance(seconds=1)
    assert await worker.run_once() == 1
    assert [row.channel for row in await outbox_rows(sessions)] == ["email", "email", "telegram"]


async def test_after_an_answered_call_the_wrap_up_is_emailed_as_a_summary(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    customer = await make_customer(
        sessions, "Мария", email="maria@example.ru", phone="+79161234567"
    )
    call, ticket = await make_call(sessions, customer, outcome=CallOutcome.ANSWERED)
    async with sessions() as session, session.begin():
        agent = User(username="anna", display_name="Анна", role=Role.AGENT)
        session.add(agent)
    await engine.handle(
        WrapUpSaved(
            call,
            ticket,
            agent.id,
            disposition="resolved",
            summary="Уточнили сроки доставки заказа 12345: курьер приедет завтра.",
            tracker_url="https://tracker.example.ru/T-7",
        )
    )
    [row] = await outbox_rows(sessions)
    assert row.recipient == "maria@example.ru"
    assert row.payload["subject"] == f"Итоги звонка 14.11.2025 [#{ticket}]"
    assert (
        "Звонок 14.11.2025, 14:23. Уточнили сроки доставки заказа 12345: курьер приедет завтра.\n"
        "Ссылка на трекер: https://tracker.example.ru/T-7\n" in row.payload["text"]
    )
    assert '<a href="https://tracker.example.ru/T-7">' in row.payload["html"]


async def test_an_abandoned_call_creates_a_callback_and_promises_it_in_telegram(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    customer = await make_customer(sessions, telegram=7001, phone="+79161234567")
    call, ticket = await make_call(sessions, customer, outcome=CallOutcome.ABANDONED)
    event = CallAbandoned(call, ticket, customer, "+79161234567", "support", 45, T0)
    await engine.handle(event)
    await engine.handle(event)  # a repeated event changes nothing

    async with sessions() as session:
        [callback] = await pending_callbacks(session)
    assert (callback.customer_id, callback.phone, callback.channel) == (
        customer,
        "+79161234567",
        "call",
    )
    [row] = await outbox_rows(sessions)
    assert row.payload["chat_id"] == 7001
    assert row.payload["text"] == (
        "Вы звонили нам 14.11.2025 в 14:23, но не дождались ответа оператора. "
        "Извините! Мы перезвоним вам в ближайшее время."
    )


async def test_an_abandoned_call_without_telegram_still_creates_one_callback(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    customer = await make_customer(sessions, phone="+79161234567")
    first, _ = await make_call(sessions, customer, outcome=CallOutcome.ABANDONED, with_ticket=False)
    second, _ = await make_call(
        sessions,
        customer,
        outcome=CallOutcome.ABANDONED,
        at=T0 + timedelta(minutes=5),
        with_ticket=False,
    )
    await engine.handle(CallAbandoned(first, None, customer, "+79161234567", "support", 45, T0))
    await engine.handle(CallAbandoned(second, None, customer, "+79161234567", "support", 9, T0))

    async with sessions() as session:
        callbacks = list(await session.scalars(select(CallbackRequest)))
    assert len(callbacks) == 1
    assert await outbox_rows(sessions) == []
    first_firing, second_firing = await firing_log(sessions)
    assert first_firing.outcome == "partial"
    assert first_firing.details[1]["reason"] == "the customer has no linked Telegram"
    assert second_firing.details[0]["status"] == "skipped"
    assert "already waiting" in second_firing.details[0]["reason"]

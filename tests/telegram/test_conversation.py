"""The conversation a customer has with the bot, from the first message to a human agent."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from callcenter.channels.telegram.callbacks import CallbackRequested
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.domain.events import MessageReceived, TicketCreated
from callcenter.domain.tickets import record_reply
from callcenter.models import (
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Outbox,
    OutboxStatus,
    Ticket,
    utcnow,
)
from callcenter.outbox import enqueue
from tests.telegram.conftest import SATURDAY_NOON, Harness

CHAT = 5550001


async def _sent_recorded(harness: Harness, message_id: int) -> None:
    """Wait until the outbox has noted which Telegram message a bot reply became."""
    for _ in range(500):
        async with harness.sessions() as session:
            found = await session.scalar(
                select(Interaction.id).where(Interaction.external_id == f"{CHAT}:{message_id}")
            )
        if found is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"message {message_id} was never recorded as sent")


async def test_full_conversation_from_first_message_to_hand_over(harness: Harness) -> None:
    api = harness.api
    seen: list[object] = []

    async def remember(event: object) -> None:
        seen.append(event)

    for kind in (MessageReceived, TicketCreated, CallbackRequested):
        harness.bus.subscribe(kind, remember)
    stop = asyncio.Event()
    harness.channel.poller.poll_timeout = 1
    running = asyncio.create_task(harness.channel.run(stop))
    try:
        api.push_message(CHAT, "/start")
        greeting = (await api.wait_sent(1))[0]
        assert greeting.chat_id == CHAT
        assert greeting.text.startswith("Здравствуйте, Иван!")
        assert "пн–пт 9:00–18:00 (Europe/Moscow)" in greeting.text
        assert greeting.parse_mode is None
        [[share]] = greeting.buttons
        assert share == {"text": "📱 Поделиться номером", "request_contact": True}

        api.push_message(CHAT, "Где мой заказ №12345? Уже неделю жду")
        status = (await api.wait_sent(2))[1]
        assert status.text.startswith("Заказ №12345: передан в доставку.")
        assert "Ожидаемая дата доставки:" in status.text

        api.push_message(CHAT, "И ещё хочу вернуть деньги за заказ №12346, он пришёл сломанным")
        handover = (await api.wait_sent(3))[2]
        assert handover.text == "Вы писали о заказе №12346 — передаю оператору."
        [[call_me]] = handover.buttons
        assert call_me == {"text": "📞 Перезвоните мне", "callback_data": "callme"}

        # A reply to the hand-over joins its ticket, which is not handed over twice.
        await _sent_recorded(harness, handover.message_id)
        api.push_message(CHAT, "Фото коробки пришлю позже", reply_to=handover.message_id)
        await api.wait_until(lambda: api.pending_updates == 0, 5, "the update to be confirmed")

        async with harness.sessions() as session:
            ticket = await session.scalar(
                select(Ticket).where(Ticket.order_numbers.is_not(None)).order_by(Ticket.id.desc())
            )
            assert ticket is not None and ticket.order_numbers == ["12346"]
            reply, _ = await record_reply(
                session,
                ticket.id,
                channel=Channel.TELEGRAM,
                text="Оформили возврат, деньги придут за 3 дня.",
                at=utcnow(),
                agent_id=None,
            )
            enqueue(
                session,
                channel="telegram",
                recipient=str(CHAT),
                payload={"text": reply.text, "interaction_id": reply.id},
                ticket_id=ticket.id,
            )
            await session.commit()
            reply_id = reply.id
        agent = (await api.wait_sent(4))[3]
        assert agent.text == "Оформили возврат, деньги придут за 3 дня."

        api.push_callback_query(CHAT, "callme", message_id=handover.message_id)
        need_phone = (await api.wait_sent(5))[4]
        assert "поделитесь номером" in need_phone.text
        await api.wait_until(lambda: api.callback_answers, 5, "the button to be answered")
        assert api.callback_answers[0]["text"] == "Заявка на звонок принята"

        api.push_message(CHAT, contact={"phone_number": "+7 916 765-43-21"})
        linked = (await api.wait_sent(6))[5]
        assert linked.text == (
            "Спасибо! Номер +79167654321 сохранён.\n"
            "Хорошо, мы перезвоним вам на номер +79167654321."
        )
        assert linked.reply_markup == {"remove_keyboard": True}
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    await harness.bus.drain()

    async with harness.sessions() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None and customer.display_name == "Иван Петров"
        kinds = set(
            await session.scalars(select(Identity.kind).where(Identity.customer_id == customer.id))
        )
        assert kinds == {IdentityKind.TELEGRAM, IdentityKind.PHONE}
        tickets = list(await session.scalars(select(Ticket).order_by(Ticket.id)))
        assert [t.order_numbers for t in tickets] == [["12345"], ["12346"]]
        assert tickets[0].intents == ["delivery"]
        assert "refund" in tickets[1].intents
        assert tickets[1].first_response_at is not None  # the agent's reply, not the bot's
        assert tickets[0].first_response_at is None
        inbound = list(
            await session.scalars(
                select(Interaction.text)
                .where(Interaction.direction == Direction.INBOUND)
                .order_by(Interaction.id)
            )
        )
        assert inbound[0] == "/start" and inbound[-1] == "+7 916 765-43-21"
        sent = await session.get(Interaction, reply_id)
        assert sent is not None and sent.external_id == f"{CHAT}:{agent.message_id}"
        callback = await session.scalar(select(CallbackRequest))
        assert callback is not None
        assert callback.status is CallbackStatus.REQUESTED
        assert (callback.phone, callback.ticket_id) == ("+79167654321", tickets[1].id)
        statuses = set(await session.scalars(select(Outbox.status)))
        assert statuses == {OutboxStatus.SENT}
    assert sum(isinstance(e, TicketCreated) for e in seen) == 2
    assert sum(isinstance(e, MessageReceived) for e in seen) == 5
    assert [type(e) for e in seen].count(CallbackRequested) == 1


async def test_deep_link_with_a_known_order_answers_its_status(harness: Harness) -> None:
    harness.api.push_message(CHAT, "/start order-12344")
    await harness.exchange()
    greeting, status = harness.api.sent
    assert greeting.text.startswith("Здравствуйте")
    assert status.text.startswith("Заказ №12344: собирается на складе.")
    [stored] = await harness.inbound()
    assert stored.text == "/start order-12344" and stored.order_numbers == ["12344"]
    assert stored.ticket_id is not None


async def test_deep_link_with_an_unknown_order_hands_over_with_context(harness: Harness) -> None:
    harness.api.push_message(CHAT, "/start 99999")
    await harness.exchange()
    assert harness.api.sent[-1].text == "Вы писали о заказе №99999 — передаю оператору."


async def test_bare_start_opens_no_ticket(harness: Harness) -> None:
    harness.api.push_message(CHAT, "/start")
    await harness.exchange()
    [stored] = await harness.inbound()
    assert stored.ticket_id is None
    assert len(harness.api.sent) == 1


async def test_outside_business_hours_the_hand_over_says_when_we_answer(harness: Harness) -> None:
    harness.channel.processor.now = lambda: SATURDAY_NOON
    harness.api.push_message(CHAT, "/start")
    harness.api.push_message(CHAT, "Хочу оформить возврат")
    await harness.exchange()
    greeting, handover = harness.api.sent
    assert "Сейчас мы не работаем" in greeting.text
    assert handover.text == (
        "Вы писали о возврате денег — передаю оператору.\n"
        "Сейчас мы не работаем; оператор ответит в рабочее время: "
        "пн–пт 9:00–18:00 (Europe/Moscow)."
    )


async def test_english_speaking_customer_gets_english(harness: Harness) -> None:
    harness.api.push_message(
        CHAT, "Where is my order #12347?", from_user={"first_name": "Ann", "language_code": "en"}
    )
    await harness.exchange()
    greeting, handover = harness.api.sent
    assert greeting.text.startswith("Hello, Ann!")
    assert handover.text == "You wrote about order #12347; passing you to an agent."
    assert handover.buttons == [[{"text": "📞 Call me back", "callback_data": "callme"}]]


async def test_a_reply_to_the_bot_joins_the_quoted_ticket(harness: Harness) -> None:
    harness.api.push_message(CHAT, "Хочу обменять куртку из заказа №4321 на другой размер")
    harness.api.push_message(CHAT, "Хочу оформить возврат за заказ №5678")
    await harness.exchange()
    first_handover = harness.api.sent[1]
    harness.api.push_message(CHAT, "Размер L, пожалуйста", reply_to=first_handover.message_id)
    await harness.exchange()
    first, second, answer = await harness.inbound()
    assert first.ticket_id != second.ticket_id
    assert answer.ticket_id == first.ticket_id

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.domain.events import MessageReceived, TicketCreated
from callcenter.domain.inbox import InboundMessage, ingest
from callcenter.domain.tickets import record_reply
from callcenter.models import (
    Channel,
    Customer,
    Direction,
    IdentityKind,
    Interaction,
    OrderRef,
    Ticket,
    TicketStatus,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def telegram(text: str, message_id: int, *, at: datetime = T0, user: int = 7001) -> InboundMessage:
    return InboundMessage(
        channel=Channel.TELEGRAM,
        external_id=f"{user}:{message_id}",
        identity_kind=IdentityKind.TELEGRAM,
        identity_value=str(user),
        display_name="Иван Петров",
        occurred_at=at,
        text=text,
    )


async def count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model))


async def test_a_first_message_creates_customer_ticket_and_tagged_interaction(
    session: AsyncSession,
) -> None:
    result = await ingest(session, telegram("Мой заказ №12345 не пришёл", 1))
    await session.commit()

    assert result.customer_created and result.ticket_created and not result.duplicate
    assert result.customer.display_name == "Иван Петров"
    assert result.ticket.intents == ["delivery"]
    assert result.ticket.order_numbers == ["12345"]
    assert result.ticket.channel is Channel.TELEGRAM
    assert result.ticket.subject == "Мой заказ №12345 не пришёл"
    assert result.interaction.direction is Direction.INBOUND
    assert result.interaction.order_numbers == ["12345"]
    assert [type(e) for e in result.events] == [TicketCreated, MessageReceived]
    ref = await session.scalar(select(OrderRef))
    assert (ref.order_number, ref.ticket_id) == ("12345", result.ticket.id)


async def test_a_second_delivery_is_recognised_and_stores_nothing(session: AsyncSession) -> None:
    first = await ingest(session, telegram("Где заказ 55555?", 10))
    await session.commit()
    again = await ingest(session, telegram("Где заказ 55555?", 10))
    await session.commit()
    assert again.duplicate and again.interaction.id == first.interaction.id
    assert again.events == []
    assert await count(session, Interaction) == 1
    assert await count(session, Ticket) == 1


async def test_racing_deliveries_of_one_message_store_it_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def deliver() -> bool:
        async with sessions() as session:
            result = await ingest(session, telegram("Где заказ 77777?", 3))
            await session.commit()
            return result.duplicate

    outcomes = await asyncio.gather(deliver(), deliver(), deliver())
    assert sorted(outcomes) == [False, True, True]
    async with sessions() as session:
        assert await count(session, Interaction) == 1
        assert await count(session, Ticket) == 1
        assert await count(session, Customer) == 1


async def test_messages_about_the_same_order_join_one_ticket_across_channels(
    session: AsyncSession,
) -> None:
    first = await ingest(session, telegram("Заказ №12345 не пришёл", 1))
    await session.commit()
    email = InboundMessage(
        channel=Channel.EMAIL,
        external_id="abc@mail.ru",
        identity_kind=IdentityKind.EMAIL,
        identity_value="ivan@mail.ru",
        occurred_at=T0 + timedelta(hours=1),
        subject="Заказ 12345",
        text="Добрый день, так и не получил заказ №12345",
    )
    # The email comes from an address not yet linked: a separate profile, so a new ticket.
    separate = await ingest(session, email)
    same_customer = await ingest(
        session, telegram("Есть новости по заказу 12345?", 2, at=T0 + timedelta(minutes=10))
    )
    other_order = await ingest(
        session, telegram("И заказ №99999 тоже не пришёл", 3, at=T0 + timedelta(minutes=20))
    )
    follow_up = await ingest(session, telegram("Спасибо!", 4, at=T0 + timedelta(hours=2)))
    await session.commit()

    assert separate.customer.id != first.customer.id and separate.ticket_created
    assert same_customer.ticket.id == first.ticket.id and not same_customer.ticket_created
    assert other_order.ticket_created and other_order.ticket.order_numbers == ["99999"]
    assert follow_up.ticket.id == other_order.ticket.id


async def test_a_hinted_solved_ticket_is_reopened(session: AsyncSession) -> None:
    first = await ingest(session, telegram("Верните деньги за заказ 4444", 1))
    first.ticket.status = TicketStatus.SOLVED
    first.ticket.solved_at = T0
    await session.commit()
    message = telegram("Деньги так и не пришли", 2, at=T0 + timedelta(days=1))
    reply = await ingest(
        session,
        InboundMessage(**{**message.__dict__, "ticket_hint": first.ticket.id}),
    )
    await session.commit()
    assert reply.ticket.id == first.ticket.id
    assert reply.ticket.status is TicketStatus.OPEN
    assert reply.ticket.reopened_count == 1 and reply.ticket.solved_at is None


async def test_automatic_mail_is_recorded_without_a_ticket(session: AsyncSession) -> None:
    auto = InboundMessage(
        channel=Channel.EMAIL,
        external_id="ooo@mail.ru",
        identity_kind=IdentityKind.EMAIL,
        identity_value="ivan@mail.ru",
        occurred_at=T0,
        subject="Автоответ: Заказ 12345",
        text="Я в отпуске до понедельника",
        automatic=True,
    )
    result = await ingest(session, auto)
    await session.commit()
    assert result.ticket is None and not result.ticket_created
    assert await count(session, Ticket) == 0
    assert result.interaction.ticket_id is None
    assert [type(e) for e in result.events] == [MessageReceived]
    assert result.events[0].automatic


async def test_the_first_agent_reply_sets_first_response_time(session: AsyncSession) -> None:
    result = await ingest(session, telegram("Где мой заказ 12345?", 1))
    await session.commit()
    at = T0 + timedelta(minutes=42)
    _, event = await record_reply(
        session, result.ticket.id, channel=Channel.TELEGRAM, text="Проверяем статус", at=at
    )
    await record_reply(
        session,
        result.ticket.id,
        channel=Channel.NOTE,
        text="позвонить в СДЭК",
        at=at + timedelta(hours=1),
    )
    await session.commit()
    ticket = await session.get(Ticket, result.ticket.id)
    assert ticket.first_response_at == at
    assert ticket.status is TicketStatus.OPEN
    assert event.ticket_id == ticket.id

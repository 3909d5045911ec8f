from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain.customers import attach_identity
from callcenter.domain.inbox import InboundMessage, ingest
from callcenter.domain.tickets import record_reply
from callcenter.models import Channel, IdentityKind
from callcenter.screenpop.card import build_card

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


async def ivan_wrote_in_telegram_and_email(session: AsyncSession) -> int:
    first = await ingest(
        session,
        InboundMessage(
            channel=Channel.TELEGRAM,
            external_id="7001:1",
            identity_kind=IdentityKind.TELEGRAM,
            identity_value="7001",
            display_name="Иван Петров",
            occurred_at=NOW - timedelta(hours=3),
            text="Мой заказ №12345 не пришёл",
        ),
    )
    customer = first.customer
    await attach_identity(session, customer, IdentityKind.PHONE, "8 916 123-45-67")
    await attach_identity(session, customer, IdentityKind.EMAIL, "ivan@mail.ru")
    await ingest(
        session,
        InboundMessage(
            channel=Channel.EMAIL,
            external_id="m1@mail.ru",
            identity_kind=IdentityKind.EMAIL,
            identity_value="ivan@mail.ru",
            occurred_at=NOW - timedelta(hours=2),
            subject="Заказ 12345",
            text="Так и не получил заказ 12345, где он?",
        ),
    )
    await session.commit()
    return customer.id


async def test_known_caller_card_shows_history_across_channels(session: AsyncSession) -> None:
    customer_id = await ivan_wrote_in_telegram_and_email(session)

    card = await build_card(session, "+7 (916) 123-45-67", NOW)

    assert card.known and card.customer_id == customer_id
    assert card.name == "Иван Петров"
    assert {(i["kind"], i["value"]) for i in card.identities} == {
        ("telegram", "7001"),
        ("phone", "+79161234567"),
        ("email", "ivan@mail.ru"),
    }
    assert [(t.intents, t.order_numbers) for t in card.tickets] == [(["delivery"], ["12345"])]
    assert [i.channel for i in card.timeline] == ["email", "telegram"]  # newest first
    assert card.timeline[1].excerpt == "Мой заказ №12345 не пришёл"
    assert card.unanswered is not None and card.unanswered.channel == "email"
    assert card.promise is None
    assert card.repeat_order == "12345"
    assert card.opening_line == "Вы писали нам на почту о заказе №12345 — сейчас всё проверю."
    assert card.last_contact_at == (NOW - timedelta(hours=2)).isoformat()


async def test_an_agent_promise_changes_the_pending_part_and_the_opening_line(
    session: AsyncSession,
) -> None:
    await ivan_wrote_in_telegram_and_email(session)
    card = await build_card(session, "89161234567", NOW)
    await record_reply(
        session,
        card.tickets[0].id,
        channel=Channel.TELEGRAM,
        text="Проверяем статус заказа, ответим сегодня",
        at=NOW - timedelta(hours=1),
    )
    await session.commit()

    card = await build_card(session, "89161234567", NOW)

    assert card.unanswered is None
    assert card.promise is not None and card.promise.excerpt.startswith("Проверяем статус")
    assert card.opening_line == (
        "Вы писали нам на почту о заказе №12345 — мы уже проверяем его статус."
    )


async def test_old_contacts_are_not_a_repeat_contact(session: AsyncSession) -> None:
    await ivan_wrote_in_telegram_and_email(session)
    card = await build_card(session, "+79161234567", NOW + timedelta(days=8))
    assert card.repeat_order is None


async def test_unknown_and_unparseable_numbers_give_an_unknown_card(session: AsyncSession) -> None:
    for number in ("+79031112233", "anonymous", ""):
        card = await build_card(session, number, NOW)
        assert not card.known and card.customer_id is None
        assert card.caller_number == number
        assert card.timeline == [] and card.opening_line == ""

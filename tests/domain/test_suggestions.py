from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain.customers import attach_identity, create_customer, merge_customers
from callcenter.domain.suggestions import (
    mentioned_identities,
    open_suggestions,
    refresh_suggestions,
)
from callcenter.models import Channel, Direction, IdentityKind, Interaction, OrderRef


def test_phones_and_emails_written_in_a_message_are_found_normalised() -> None:
    text = "Мой номер 8 (916) 123-45-67, почта Ivan@Mail.RU. Заказ №12345 от 12.05.2024"
    assert mentioned_identities(text) == {
        (IdentityKind.PHONE, "+79161234567"),
        (IdentityKind.EMAIL, "ivan@mail.ru"),
    }


async def test_mentioned_email_and_shared_order_suggest_a_merge_never_merge(
    session: AsyncSession,
) -> None:
    caller = await create_customer(session, "Иван Петров")
    await attach_identity(session, caller, IdentityKind.PHONE, "+79161234567")
    await attach_identity(session, caller, IdentityKind.EMAIL, "ivan@mail.ru")
    writer = await create_customer(session, "Ваня")
    await attach_identity(session, writer, IdentityKind.TELEGRAM, 5550001)
    session.add(
        Interaction(
            customer_id=writer.id,
            channel=Channel.TELEGRAM,
            direction=Direction.INBOUND,
            external_id="5550001:1",
            text="Пишите мне на IVAN@mail.ru",
        )
    )
    session.add_all(
        [
            OrderRef(order_number="12345", customer_id=caller.id),
            OrderRef(order_number="12345", customer_id=writer.id),
        ]
    )
    await session.flush()

    made = await refresh_suggestions(session, writer.id)
    again = await refresh_suggestions(session, writer.id)
    await session.commit()

    assert sorted(s.reason for s in made) == ["mentioned-email", "same-order"]
    assert again == []
    listed = await open_suggestions(session, caller.id)
    assert {(s.reason, s.evidence) for s, _, _ in listed} == {
        ("mentioned-email", "ivan@mail.ru"),
        ("same-order", "12345"),
    }
    assert writer.merged_into_id is None

    await merge_customers(session, writer.id, caller.id, actor_name="agent")
    await session.commit()
    assert await open_suggestions(session, caller.id) == []

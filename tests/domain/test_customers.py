from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.domain.customers import (
    attach_identity,
    create_customer,
    find_customer,
    get_customer,
    merge_customers,
    resolve_customer,
)
from callcenter.domain.errors import (
    AlreadyMerged,
    DuplicateIdentity,
    InvalidEmail,
    InvalidPhone,
    NotFound,
    SelfMerge,
)
from callcenter.models import (
    AuditLog,
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Role,
    Ticket,
    User,
)

PHONE = IdentityKind.PHONE
EMAIL = IdentityKind.EMAIL
TELEGRAM = IdentityKind.TELEGRAM


async def test_a_customer_is_found_by_any_written_form_of_their_number(
    session: AsyncSession,
) -> None:
    ivan = await create_customer(session, "Иван Петров")
    await attach_identity(session, ivan, PHONE, "8 (916) 123-45-67", source="call")
    await session.commit()
    for raw in ("+7 916 123 45 67", "79161234567", "9161234567"):
        found = await find_customer(session, PHONE, raw)
        assert found is not None and found.id == ivan.id
    assert await find_customer(session, PHONE, "+7 916 000 00 00") is None


async def test_one_profile_joins_phone_telegram_and_email(session: AsyncSession) -> None:
    ivan = await create_customer(session, "Иван")
    await attach_identity(session, ivan, PHONE, "+79161234567")
    await attach_identity(session, ivan, TELEGRAM, 555001, display="@ivan")
    await attach_identity(session, ivan, EMAIL, "Ivan@Mail.ru")
    await session.commit()
    for kind, raw in ((TELEGRAM, "555001"), (EMAIL, "ivan@mail.ru"), (PHONE, "89161234567")):
        assert (await find_customer(session, kind, raw)).id == ivan.id


async def test_attaching_the_same_identity_twice_is_idempotent(session: AsyncSession) -> None:
    ivan = await create_customer(session, "Иван")
    first = await attach_identity(session, ivan, EMAIL, "ivan@mail.ru")
    second = await attach_identity(session, ivan, EMAIL, " IVAN@mail.ru ")
    assert first.id == second.id
    count = await session.scalar(select(func.count()).select_from(Identity))
    assert count == 1


async def test_an_identity_of_another_customer_is_refused_and_nothing_changes(
    session: AsyncSession,
) -> None:
    ivan = await create_customer(session, "Иван")
    olga = await create_customer(session, "Ольга")
    await attach_identity(session, ivan, PHONE, "+79161234567")
    await session.commit()
    with pytest.raises(DuplicateIdentity, match=r"\+79161234567 already belongs"):
        await attach_identity(session, olga, PHONE, "8 916 123 45 67")
    await session.commit()
    owners = (await session.scalars(select(Identity.customer_id))).all()
    assert owners == [ivan.id]


@pytest.mark.parametrize(
    ("kind", "raw", "error"),
    [
        (PHONE, "not a phone", InvalidPhone),
        (EMAIL, "ivan@", InvalidEmail),
        (EMAIL, "", InvalidEmail),
    ],
)
async def test_bad_identities_are_refused_and_store_nothing(
    session: AsyncSession, kind: IdentityKind, raw: str, error: type[Exception]
) -> None:
    ivan = await create_customer(session, "Иван")
    with pytest.raises(error):
        await attach_identity(session, ivan, kind, raw)
    await session.commit()
    assert await session.scalar(select(func.count()).select_from(Identity)) == 0


async def test_resolve_creates_once_then_finds(session: AsyncSession) -> None:
    first, created = await resolve_customer(session, PHONE, "+79161234567", display_name="Иван")
    second, created_again = await resolve_customer(session, PHONE, "8 916 123-45-67")
    await session.commit()
    assert created and not created_again
    assert first.id == second.id
    assert await session.scalar(select(func.count()).select_from(Customer)) == 1


async def test_concurrent_resolves_of_one_number_make_one_customer(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    """Two transactions racing to create the same caller end up with one profile."""
    async with sessions() as first, sessions() as second:
        a, created_a = await resolve_customer(first, PHONE, "+79161234567")
        await first.commit()
        b, created_b = await resolve_customer(second, PHONE, "89161234567")
        await second.commit()
    assert (created_a, created_b) == (True, False)
    assert a.id == b.id


async def _customer_with_history(session: AsyncSession, name: str, phone: str) -> Customer:
    customer = await create_customer(session, name)
    await attach_identity(session, customer, PHONE, phone)
    ticket = Ticket(customer_id=customer.id, channel=Channel.TELEGRAM, subject="Где заказ?")
    session.add(ticket)
    await session.flush()
    session.add(
        Interaction(
            customer_id=customer.id,
            ticket_id=ticket.id,
            channel=Channel.TELEGRAM,
            direction=Direction.INBOUND,
            external_id=f"{phone}:1",
            text="Мой заказ №12345 не пришёл",
            occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        )
    )
    await session.flush()
    return customer


async def test_merge_moves_identities_tickets_and_interactions_and_keeps_the_source(
    session: AsyncSession,
) -> None:
    supervisor = User(username="olga", role=Role.SUPERVISOR)
    session.add(supervisor)
    target = await _customer_with_history(session, "Иван Петров", "+79161234567")
    source = await _customer_with_history(session, "", "+79031112233")
    await session.commit()

    merged = await merge_customers(session, source.id, target.id, actor=supervisor)
    await session.commit()

    assert merged.id == target.id
    for model in (Identity, Ticket, Interaction):
        owners = set((await session.scalars(select(model.customer_id))).all())
        assert owners == {target.id}, model.__name__
    kept = await session.get(Customer, source.id)
    assert kept is not None and kept.merged_into_id == target.id
    assert (await get_customer(session, source.id)).id == target.id
    assert (await find_customer(session, PHONE, "+79031112233")).id == target.id
    entry = await session.scalar(select(AuditLog).where(AuditLog.action == "customer.merge"))
    assert entry.actor == "olga" and entry.actor_id == supervisor.id
    assert entry.details == {"source_id": source.id, "target_id": target.id}


async def test_merging_a_customer_into_itself_is_refused(session: AsyncSession) -> None:
    ivan = await create_customer(session, "Иван")
    await session.commit()
    with pytest.raises(SelfMerge, match="into itself"):
        await merge_customers(session, ivan.id, ivan.id)
    assert await session.scalar(select(func.count()).select_from(AuditLog)) == 0


async def test_merging_twice_or_into_a_missing_customer_is_refused(session: AsyncSession) -> None:
    a = await create_customer(session, "A")
    b = await create_customer(session, "B")
    c = await create_customer(session, "C")
    await session.commit()
    a_id, c_id = a.id, c.id
    await merge_customers(session, a.id, b.id, actor_name="test")
    await session.commit()
    with pytest.raises(AlreadyMerged, match=f"customer {a_id} was already merged"):
        await merge_customers(session, a_id, c_id)
    with pytest.raises(NotFound):
        await merge_customers(session, c_id, 999_999)
    await session.rollback()
    assert (await session.get(Customer, c_id)).merged_into_id is None

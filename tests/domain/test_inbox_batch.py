"""``ingest_many`` stores a batch exactly as ``ingest`` does one message after another."""

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.domain.errors import InvalidTelegram
from callcenter.domain.events import MessageReceived, TicketCreated
from callcenter.domain.inbox import InboundMessage, IngestResult, ingest, ingest_many
from callcenter.models import (
    Channel,
    Customer,
    Identity,
    IdentityKind,
    Interaction,
    OrderRef,
    Ticket,
    TicketStatus,
)
from callcenter.schema import metadata

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
RECENT = timedelta(hours=1)
"""An ``updated_at`` this close to the wall clock was stamped by the column's onupdate."""


def telegram(user: int, message_id: int, text: str, minutes: int, **extra) -> InboundMessage:
    return InboundMessage(
        channel=Channel.TELEGRAM,
        external_id=f"{user}:{message_id}",
        identity_kind=IdentityKind.TELEGRAM,
        identity_value=str(user),
        display_name=f"Клиент {user}",
        occurred_at=T0 + timedelta(minutes=minutes),
        text=text,
        **extra,
    )


def email(message_id: str, sender: str, subject: str, text: str, minutes: int, **extra):
    return InboundMessage(
        channel=Channel.EMAIL,
        external_id=message_id,
        identity_kind=IdentityKind.EMAIL,
        identity_value=sender,
        display_name="Ольга Попова",
        occurred_at=T0 + timedelta(minutes=minutes),
        subject=subject,
        text=text,
        language="ru",
        **extra,
    )


async def prepare(session: AsyncSession) -> int:
    """Earlier history: customer 7001 with an open ticket about order 12345 and a solved one.

    Returns the solved ticket's id, which a message in the batch refers to.
    """
    await ingest(session, telegram(7001, 1, "Заказ №12345 не пришёл", -600))
    solved = await ingest(session, telegram(7001, 2, "Верните деньги за заказ 4444", -500))
    solved.ticket.status = TicketStatus.SOLVED
    solved.ticket.solved_at = T0 - timedelta(hours=2)
    await session.commit()
    return solved.ticket.id


def batch(solved_ticket: int) -> list[InboundMessage]:
    return [
        telegram(7001, 1, "Заказ №12345 не пришёл", -600),  # stored before
        telegram(7002, 1, "Где мой заказ №55555? Жду неделю", 1),  # new customer
        telegram(7002, 2, "Есть новости по заказу 55555?", 2),  # same order, same batch
        telegram(7002, 1, "Где мой заказ №55555? Жду неделю", 1),  # repeated in the batch
        telegram(7001, 3, "Так где же заказ 12345?", 3),  # known customer, open ticket
        email(
            "ooo-1@mail.ru",
            "Olga@Mail.ru",
            "Автоответ: Заказ 12345",
            "Я в отпуске",
            4,
            automatic=True,
        ),  # automatic mail from an unknown address: a customer, no ticket
        email("q-1@mail.ru", "olga@mail.ru", "Заказ 12345", "Заказ №12345 не пришёл", 5),
        email("q-2@mail.ru", "olga@mail.ru", "Re: Заказ 12345", "Заказ 12345 где?", 5),
        telegram(7002, 3, "По заказу 55555 хочу вернуть деньги", 2),  # same time, new intent
        telegram(7002, 4, "Спасибо!", 6),  # follow-up of the newest open ticket
        telegram(7001, 4, "Деньги так и не пришли", 7, ticket_hint=solved_ticket),  # reopens
        telegram(7003, 1, "Оплата не проходит", 8, language="en"),
        telegram(7003, 2, "Оплата не проходит", 8),  # same text, another message
        telegram(7002, 2, "Есть новости по заказу 55555?", 2),  # repeated again
    ]


def canonical(value: datetime | None) -> datetime | str | None:
    if value is not None and abs(datetime.now(UTC) - value) < RECENT:
        return "stamped now"
    return value


async def snapshot(session: AsyncSession, results: list[IngestResult]) -> dict[str, object]:
    """Rows and results with database ids replaced by stable names."""
    session.expire_all()
    identities = list(await session.scalars(select(Identity)))
    name: dict[int, tuple[str, ...]] = {}
    for identity in identities:
        name[identity.customer_id] = (*name.get(identity.customer_id, ()), identity.value)
    customers = list(await session.scalars(select(Customer)))
    tickets = list(await session.scalars(select(Ticket)))
    ticket_name = {t.id: (name[t.customer_id], t.subject, t.created_at) for t in tickets}
    ticket_name[None] = None  # type: ignore[index]
    interactions = list(await session.scalars(select(Interaction)))
    refs = list(await session.scalars(select(OrderRef)))

    def event(item: object) -> tuple[object, ...]:
        if isinstance(item, TicketCreated):
            return ("created", ticket_name[item.ticket_id], name[item.customer_id], item.channel)
        assert isinstance(item, MessageReceived)
        external = next(i.external_id for i in interactions if i.id == item.interaction_id)
        return (
            "received",
            external,
            name[item.customer_id],
            ticket_name[item.ticket_id],
            item.intents,
            item.order_numbers,
            item.occurred_at,
            item.automatic,
        )

    return {
        "customers": sorted((name[c.id], c.display_name, c.language) for c in customers),
        "identities": sorted(
            (i.kind, i.value, i.display, i.source, name[i.customer_id]) for i in identities
        ),
        "tickets": sorted(
            (
                ticket_name[t.id],
                t.status,
                t.channel,
                t.intents,
                t.order_numbers,
                str(canonical(t.updated_at)),
                t.reopened_count,
                t.solved_at is None,
            )
            for t in tickets
        ),
        "interactions": sorted(
            (
                i.channel,
                i.external_id or "",
                name[i.customer_id],
                str(ticket_name[i.ticket_id]),
                i.intents,
                i.order_numbers,
                i.text,
            )
            for i in interactions
        ),
        "order_refs": sorted(
            (r.order_number, name[r.customer_id], str(ticket_name[r.ticket_id])) for r in refs
        ),
        "results": [
            (
                r.interaction.external_id,
                r.duplicate,
                r.customer_created,
                r.ticket_created,
                name[r.customer.id],
                ticket_name[r.ticket.id if r.ticket else None],
                [event(e) for e in r.events],
            )
            for r in results
        ],
    }


async def wipe(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        for table in reversed(metadata.sorted_tables):
            await session.execute(delete(table))


async def test_a_batch_is_stored_as_one_message_after_another(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        solved = await prepare(session)
        one_by_one = [await ingest(session, message) for message in batch(solved)]
        await session.commit()
        expected = await snapshot(session, one_by_one)
    await wipe(sessions)
    async with sessions() as session:
        solved = await prepare(session)
        together = await ingest_many(session, batch(solved))
        await session.commit()
        actual = await snapshot(session, together)

    assert actual == expected
    # What the scenario is meant to exercise, so that equality is not vacuous:
    flags = [(r.duplicate, r.customer_created, r.ticket_created) for r in together]
    assert flags[0] == (True, False, False) and flags[3] == flags[13] == (True, False, False)
    assert flags[1] == (False, True, True) and flags[2] == (False, False, False)
    assert together[2].ticket is together[1].ticket and together[3].ticket is together[1].ticket
    assert together[4].ticket.order_numbers == ["12345"] and not together[4].ticket_created
    assert together[5].ticket is None and together[5].customer_created
    assert together[6].ticket_created and together[6].customer is together[5].customer
    assert together[7].ticket is together[6].ticket
    assert together[8].ticket is together[1].ticket and together[8].ticket.intents == [
        "delivery",
        "refund",
    ]
    assert together[9].ticket is together[1].ticket
    assert together[10].ticket.id == solved and together[10].ticket.reopened_count == 1
    assert together[10].ticket.status is TicketStatus.OPEN
    assert together[11].customer.language == "en" and together[12].ticket is together[11].ticket
    assert expected["order_refs"].count(("12345", ("olga@mail.ru",), "None")) == 1


def assumed_new(solved_ticket: int) -> list[InboundMessage]:
    """The batch without the message stored before and the one with a ticket hint: what the
    Telegram worker stores with ``assume_new`` (it has just claimed the update ids)."""
    return [m for m in batch(solved_ticket) if m.external_id != "7001:1" and not m.ticket_hint]


async def test_a_batch_assumed_new_is_stored_as_one_message_after_another(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        solved = await prepare(session)
        one_by_one = [await ingest(session, message) for message in assumed_new(solved)]
        await session.commit()
        expected = await snapshot(session, one_by_one)
    await wipe(sessions)
    async with sessions() as session:
        solved = await prepare(session)
        together = await ingest_many(session, assumed_new(solved), savepoint=False, assume_new=True)
        await session.commit()
        actual = await snapshot(session, together)

    assert actual == expected
    joined = together[3]  # 7001:3 joins the open ticket read from the database and tags it
    assert joined.interaction.external_id == "7001:3" and not joined.ticket_created
    assert joined.ticket.order_numbers == ["12345"] and joined.ticket.intents
    assert together[1].ticket.id == together[0].ticket.id and together[0].ticket_created


async def test_an_empty_batch_stores_nothing(session: AsyncSession) -> None:
    assert await ingest_many(session, []) == []
    assert await session.scalar(select(func.count()).select_from(Interaction)) == 0


async def test_a_bad_identity_stores_nothing_of_the_batch(session: AsyncSession) -> None:
    good = telegram(7001, 1, "Где заказ 12345?", 0)
    bad = InboundMessage(**{**good.__dict__, "external_id": "x:1", "identity_value": "@ivan"})
    with pytest.raises(InvalidTelegram):
        await ingest_many(session, [good, bad])
    await session.commit()
    assert await session.scalar(select(func.count()).select_from(Interaction)) == 0
    assert await session.scalar(select(func.count()).select_from(Customer)) == 0


async def test_racing_batches_store_every_message_once(
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    messages = [telegram(8000 + n % 4, n, f"Где заказ №{10000 + n % 3}?", n) for n in range(1, 13)]
    first_stored = asyncio.Event()

    async def first() -> list[IngestResult]:
        async with sessions() as session:
            results = await ingest_many(session, messages[:8])
            first_stored.set()
            await asyncio.sleep(0.5)  # the other batch reads before this commits
            await session.commit()
            return results

    async def second() -> list[IngestResult]:
        await first_stored.wait()
        async with sessions() as session:
            results = await ingest_many(session, messages[4:])
            await session.commit()
            return results

    with caplog.at_level(logging.INFO, logger="callcenter.domain.inbox"):
        a, b = await asyncio.gather(first(), second())

    assert [r.duplicate for r in a] == [False] * 8
    assert [r.duplicate for r in b] == [True] * 4 + [False] * 4
    assert {r.interaction.id for r in a[4:]} == {r.interaction.id for r in b[:4]}
    async with sessions() as session:
        stored = list(await session.scalars(select(Interaction.external_id)))
        assert sorted(stored) == sorted(m.external_id for m in messages)
        assert await session.scalar(select(func.count()).select_from(Customer)) == 4
        assert await session.scalar(select(func.count()).select_from(Ticket)) == 12
    if database_url.startswith("postgresql"):
        # PostgreSQL lets the second batch read before the first commits: it must have
        # collided on insert and fallen back to one message at a time.
        assert "raced another writer" in caplog.text


TEXTS = [
    "Где мой заказ №{order}? Жду уже неделю",
    "Хочу вернуть деньги за заказ {order}",
    "Хочу обменять заказ №{order} на другой размер",
    "Можно обменять куртку на размер побольше?",
    "Верните деньги, товар не подошёл",
    "Спасибо, всё получил",
    "Оплата не проходит, карта списала дважды",
    "Когда привезут? Заказ #{order}",
]


def conversation(seed: int, count: int, first_minute: int) -> list[InboundMessage]:
    """Three customers writing about a handful of orders, often about the same ones again."""
    rng = random.Random(seed)
    return [
        telegram(
            8000 + rng.randrange(3),
            first_minute + n,
            rng.choice(TEXTS).format(order=10_000 + rng.randrange(12)),
            first_minute + n,
        )
        for n in range(count)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_batch_reading_only_candidate_tickets_files_as_one_by_one(
    sessions: async_sessionmaker[AsyncSession], seed: int
) -> None:
    """Customers with many open tickets: the batch reads only the tickets it could choose
    (``_candidates``), yet files every message where one-by-one storing would."""
    history, later = conversation(seed, 60, 0), conversation(seed + 100, 60, 100)

    async def store(together: bool) -> dict[str, object]:
        async with sessions() as session:
            for message in history:
                await ingest(session, message)
            await session.commit()
            if together:
                results = await ingest_many(session, later, savepoint=False, assume_new=True)
            else:
                results = [await ingest(session, message) for message in later]
            await session.commit()
            return await snapshot(session, results)

    expected = await store(together=False)
    await wipe(sessions)
    actual = await store(together=True)

    assert actual == expected
    tickets = expected["tickets"]
    assert len(tickets) > 12, "customers have many open tickets to choose from"


async def test_a_ticket_that_stops_qualifying_in_the_batch_hands_over_to_the_next_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Two open exchange tickets without order numbers; the first message with an order number
    takes the newer one (which then has one), so the second must take the older one, which
    the batch had to read although it was not the newest."""
    history = [
        telegram(8100, 1, "Можно обменять куртку?", 0),
        telegram(8100, 2, "Верните деньги", 1),
        telegram(8100, 3, "Верните деньги или обменяйте куртку", 2),
    ]
    later = [
        telegram(8100, 4, "Хочу обменять заказ 10001", 3),
        telegram(8100, 5, "Хочу обменять заказ 10002", 4),
    ]

    async def store(together: bool) -> tuple[dict[str, object], list[IngestResult]]:
        async with sessions() as session:
            older = (await ingest(session, history[0])).ticket
            for message in history[1:]:
                await ingest(session, message)
            await session.commit()
            if together:
                results = await ingest_many(session, later, savepoint=False, assume_new=True)
            else:
                results = [await ingest(session, message) for message in later]
            await session.commit()
            assert results[1].ticket.id == older.id, "the older exchange ticket takes the second"
            return await snapshot(session, results), results

    expected, _ = await store(together=False)
    await wipe(sessions)
    actual, results = await store(together=True)

    assert actual == expected
    assert not any(r.ticket_created for r in results)

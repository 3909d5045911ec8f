from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.models import SurveyAnswer
from callcenter.db import create_engine
from callcenter.domain.customers import find_customer
from callcenter.domain.identity import normalize
from callcenter.models import Call, Channel, Customer, Identity, IdentityKind, Interaction, Ticket
from callcenter.seed import seed
from callcenter.seed_data import Generator, NextIds


async def test_seed_loads_consistent_history_across_three_channels(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    engine = create_engine(database_url)
    try:
        first = await seed(engine, 40, batch_size=15)
        second = await seed(engine, 10, batch_size=15, seed_value=2)
    finally:
        await engine.dispose()

    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 50
        interactions = await session.scalar(select(func.count()).select_from(Interaction))
        assert interactions == first.interactions + second.interactions
        assert 300 <= interactions <= 700

        channels = set(await session.scalars(select(Interaction.channel).distinct()))
        assert channels == {Channel.CALL, Channel.TELEGRAM, Channel.EMAIL}
        calls = await session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.channel == Channel.CALL)
        )
        assert await session.scalar(select(func.count()).select_from(Call)) == calls

        oldest = await session.scalar(select(func.min(Interaction.occurred_at)))
        assert datetime.now(UTC) - oldest <= timedelta(days=91)

        for identity in await session.scalars(select(Identity)):
            assert normalize(identity.kind, identity.value) == identity.value
        phone = await session.scalar(
            select(Identity.value).where(Identity.kind == IdentityKind.PHONE).limit(1)
        )
        national = "8" + phone[2:]
        assert await find_customer(session, IdentityKind.PHONE, national) is not None

        names = list(await session.scalars(select(Customer.display_name)))
        assert all(any("а" <= ch <= "я" for ch in name.lower()) for name in names)
        orphan_tickets = await session.scalar(
            select(func.count())
            .select_from(Interaction)
            .outerjoin(Ticket, Ticket.id == Interaction.ticket_id)
            .where(Ticket.customer_id != Interaction.customer_id)
        )
        assert orphan_tickets == 0


async def test_a_large_load_rebuilds_exactly_the_indexes_the_migrations_made(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from callcenter.schema import metadata

    engine = create_engine(database_url)
    try:
        await seed(engine, 30, batch_size=10, rebuild_indexes=True)

        def diff(connection):  # type: ignore[no-untyped-def]
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 30


async def test_a_share_of_solved_tickets_is_rated_as_real_nps_surveys_skew(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    engine = create_engine(database_url)
    try:
        await seed(engine, 60, batch_size=25)
    finally:
        await engine.dispose()
    async with sessions() as session:
        answers = (
            await session.execute(
                select(SurveyAnswer, Ticket).join(Ticket, Ticket.id == SurveyAnswer.ticket_id)
            )
        ).all()
        solved = await session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.solved_at.is_not(None))
        )
    assert 0.15 * solved <= len(answers) <= 0.45 * solved
    for answer, ticket in answers:
        assert answer.customer_id == ticket.customer_id and 0 <= answer.score <= 10
        assert ticket.solved_at < answer.answered_at <= datetime.now(UTC)

    scores = [
        row[4]
        for row in Generator(seed=3, now=datetime.now(UTC)).batch(NextIds(), 3000).survey_answers
    ]
    promoters = sum(s >= 9 for s in scores) / len(scores)
    detractors = sum(s <= 6 for s in scores) / len(scores)
    assert 0.5 < promoters < 0.65 and 0.12 < detractors < 0.25  # NPS about +40

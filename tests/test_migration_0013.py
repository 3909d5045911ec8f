"""Migration 0013: callback attempts stored as ``missed`` before it get their own outcomes."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from callcenter.db import create_engine
from callcenter.migrate import downgrade_async, upgrade_async
from callcenter.models import Call, CallOutcome, Channel, Customer, Direction, Interaction
from tests.conftest import BACKENDS
from tests.dbs import database

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
OLD_ROWS = {
    # interaction text, direction -> outcome after the upgrade
    "cb-no-answer": (
        "Обратный звонок на +79161234567: не ответил",
        Direction.OUTBOUND,
        "no_answer",
    ),
    "cb-busy": ("Обратный звонок на +79161234567: занято", Direction.OUTBOUND, "busy"),
    "cb-failed": (
        "Обратный звонок на +79161234567: не удалось дозвониться",
        Direction.OUTBOUND,
        "failed",
    ),
    "cb-talked": ("Обратный звонок на +79161234567: разговор 12 с", Direction.OUTBOUND, "answered"),
    "inbound-missed": ("занято", Direction.INBOUND, "missed"),
    "outbound-other": ("Звонок клиенту", Direction.OUTBOUND, "missed"),
}


async def _outcomes(engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT linkedid, outcome FROM calls"))
        return dict(rows.all())


def _indexes(connection) -> set[str]:  # type: ignore[no-untyped-def]
    return {index["name"] for index in inspect(connection).get_indexes("callback_requests")}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_old_callback_attempts_get_their_outcomes_and_back(
    backend: str, tmp_path: Path
) -> None:
    async with database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade_async(url, "0012")
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            async with sessions() as session, session.begin():
                customer = Customer(display_name="Иван Петров")
                session.add(customer)
                await session.flush()
                for linkedid, (body, direction, _) in OLD_ROWS.items():
                    interaction = Interaction(
                        customer_id=customer.id,
                        channel=Channel.CALL,
                        direction=direction,
                        text=body,
                        occurred_at=AT,
                    )
                    session.add(interaction)
                    await session.flush()
                    old = "answered" if linkedid == "cb-talked" else "missed"
                    session.add(
                        Call(
                            interaction_id=interaction.id,
                            linkedid=linkedid,
                            caller_number="+79161234567",
                            outcome=CallOutcome(old),
                            started_at=AT,
                        )
                    )
            async with engine.connect() as conn:
                assert "ix_callback_requests_last_attempt_at" not in await conn.run_sync(_indexes)

            await upgrade_async(url, "0013")
            assert await _outcomes(engine) == {k: v[2] for k, v in OLD_ROWS.items()}
            async with engine.connect() as conn:
                assert "ix_callback_requests_last_attempt_at" in await conn.run_sync(_indexes)
            async with sessions() as session, session.begin():  # the new values are allowed
                call = await session.scalar(select(Call).where(Call.linkedid == "cb-busy"))
                assert call is not None and call.outcome is CallOutcome.BUSY
                call.outcome = CallOutcome.NO_ANSWER

            await downgrade_async(url, "0012")
            after = {k: ("answered" if k == "cb-talked" else "missed") for k in OLD_ROWS}
            assert await _outcomes(engine) == after
            async with engine.connect() as conn:
                assert "ix_callback_requests_last_attempt_at" not in await conn.run_sync(_indexes)
            with pytest.raises(IntegrityError):  # the old constraint is back
                async with engine.begin() as conn:
                    await conn.execute(text("UPDATE calls SET outcome = 'busy'"))
        finally:
            await engine.dispose()

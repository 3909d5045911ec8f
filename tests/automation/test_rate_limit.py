"""Automatic emails to one address are capped per hour, so two robots cannot loop forever."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.engine import Engine
from tests.automation.helpers import Clock, email_message, firing_log, outbox_rows, receive


async def test_at_most_five_automatic_emails_per_address_an_hour(
    sessions: async_sessionmaker[AsyncSession], engine: Engine, clock: Clock
) -> None:
    async def new_request(n: int) -> None:
        # A new order number each time, so each message opens a new ticket.
        message = email_message(f"Заказ {10000 + n}", f"<loop{n}@x>", at=clock.at)
        for event in (await receive(sessions, message)).events:
            await engine.handle(event)

    for n in range(6):
        await new_request(n)
        clock.advance(minutes=5)
    assert len(await outbox_rows(sessions)) == 5
    skipped = (await firing_log(sessions))[-1]
    assert skipped.outcome == "partial"
    assert skipped.details[0]["reason"] == (
        "5 automatic emails to ivan@example.ru in the last hour: limit reached"
    )

    clock.advance(minutes=35)  # an hour after the first email
    await new_request(6)
    assert len(await outbox_rows(sessions)) == 6

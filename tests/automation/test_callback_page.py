"""The callbacks page: agents and supervisors see what the dialler has to call, is calling and
has called, with attempts, agent and outcome; customer text is shown inert."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import (
    CallbackPolicy,
    DialOutcome,
    claim_callback,
    finish_attempt,
    request_callback,
)
from callcenter.db import unit_of_work
from callcenter.domain.customers import create_customer
from tests.web.conftest import server, signed_in, staff, visitor  # noqa: F401  (fixtures)
from tests.web.helpers import HTML, Visitor

SignIn = Callable[[str], Awaitable[Visitor]]
HOSTILE = '<img src=x onerror="alert(1)">'


async def test_agents_and_supervisors_see_callbacks_with_their_dialling_state(
    signed_in: SignIn,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    async with unit_of_work(sessions) as session:
        customer = await create_customer(session, HOSTILE)
        for phone in ("+79161234567", "+79161234568"):
            await request_callback(
                session,
                customer_id=customer.id,
                ticket_id=None,
                phone=phone,
                channel="call",
                due_at=now - timedelta(minutes=5),
                queue="support",
            )
    async with unit_of_work(sessions) as session:
        tried = await claim_callback(
            session, agent_endpoint="PJSIP/1001", queues={"support"}, now=now
        )
        await finish_attempt(
            session,
            tried.id,
            DialOutcome.NO_ANSWER,
            reason="customer: no answer",
            now=now,
            policy=CallbackPolicy(max_attempts=1),
        )
    for name in ("anna", "sveta"):
        who = await signed_in(name)
        response = await who.get("/callbacks", headers=HTML)
        assert response.status == 200
        page = await response.text()
        assert f'data-callback="{tried.id}" data-status="failed"' in page
        assert "не дозвонились" in page and "PJSIP/1001" in page
        assert "no_answer: customer: no answer" in page
        assert 'data-status="requested"' in page and "ждёт" in page
        assert HOSTILE not in page and "&lt;img src=x" in page

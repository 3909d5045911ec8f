"""The customer's NPS page from an emailed link: shown on GET, stored once on POST."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.events import SurveyAnswered
from callcenter.automation.models import SurveyAnswer
from callcenter.automation.surveys import SurveySigner
from callcenter.models import Channel, Customer, Ticket
from callcenter.web.keys import BUS
from tests.web.conftest import SESSION_KEY
from tests.web.helpers import HTML


async def a_ticket(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session, session.begin():
        customer = Customer(display_name="Иван")
        session.add(customer)
        await session.flush()
        ticket = Ticket(customer_id=customer.id, channel=Channel.EMAIL, subject="Заказ 12345")
        session.add(ticket)
        await session.flush()
        return ticket.id


async def test_a_link_shows_the_score_and_only_the_customers_post_stores_it(
    app, visitor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ticket_id = await a_ticket(sessions)
    token = SurveySigner(SESSION_KEY).token(ticket_id, 1, 9)
    published: list[object] = []

    async def record(event: object) -> None:
        published.append(event)

    app[BUS].subscribe(SurveyAnswered, record)
    customer = visitor()

    page = await customer.get(f"/survey/{token}", headers=HTML)
    assert page.status == 200
    assert "Отправить оценку 9" in await page.text()
    async with sessions() as session:
        assert await session.scalar(select(SurveyAnswer)) is None  # a scanner's GET stores nothing

    await customer.refresh_csrf(f"/survey/{token}")
    for _ in range(2):
        answered = await customer.post_form(f"/survey/{token}", {})
        assert answered.status == 200
        assert "Ваша оценка сохранена" in await answered.text()
    await app[BUS].drain()
    async with sessions() as session:
        [answer] = await session.scalars(select(SurveyAnswer))
    assert (answer.ticket_id, answer.score, answer.channel) == (ticket_id, 9, "email")
    assert len(published) == 1


async def test_a_forged_or_malformed_link_is_not_found(app, visitor, sessions) -> None:
    ticket_id = await a_ticket(sessions)
    good = SurveySigner(SESSION_KEY).token(ticket_id, 1, 9)
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    customer = visitor()
    for token in (forged, "1", "9.9.9"):
        assert (await customer.get(f"/survey/{token}", headers=HTML)).status == 404
    await customer.refresh_csrf("/login")
    assert (await customer.post_form(f"/survey/{forged}", {})).status == 404

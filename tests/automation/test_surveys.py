"""NPS: asked when a ticket is solved in the customer's last channel, answered once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.engine import Engine
from callcenter.automation.events import SurveyAnswered, TicketSolved
from callcenter.automation.models import SurveyAnswer
from callcenter.automation.surveys import (
    InvalidSurveyAnswer,
    SurveySigner,
    answer_from_callback,
    answer_from_token,
    nps_summary,
    record_answer,
)
from callcenter.models import Ticket, TicketStatus
from tests.automation.helpers import (
    PUBLIC_URL,
    SECRET,
    T0,
    email_message,
    make_customer,
    outbox_rows,
    receive,
    telegram_message,
)

SIGNER = SurveySigner(SECRET)


async def _solve(sessions: async_sessionmaker[AsyncSession], engine: Engine, ticket_id: int):
    async with sessions() as session, session.begin():
        ticket = await session.get(Ticket, ticket_id)
        ticket.status = TicketStatus.SOLVED
        ticket.solved_at = T0
        customer_id = ticket.customer_id
    await engine.handle(TicketSolved(ticket_id, customer_id, T0))


async def test_a_telegram_customer_is_asked_with_buttons_and_the_answer_is_stored_once(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    await make_customer(sessions, email="ivan@example.ru", telegram=7001)
    await receive(sessions, email_message("Заказ 55555", "<e1@x>", at=T0 - timedelta(days=1)))
    result = await receive(sessions, telegram_message("Где заказ 12345?", 1))
    ticket = result.ticket.id
    await _solve(sessions, engine, ticket)

    [row] = await outbox_rows(sessions)  # no acknowledgement: no events of the intake were sent
    assert row.channel == "telegram"
    assert row.payload["text"] == (
        f"Ваше обращение №{ticket} решено. Насколько вероятно, что вы порекомендуете нас "
        "друзьям? Оцените от 0 до 10:"
    )
    keyboard = row.payload["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in line] for line in keyboard] == [
        ["0", "1", "2", "3", "4", "5"],
        ["6", "7", "8", "9", "10"],
    ]
    nine = keyboard[1][3]["callback_data"]
    assert len(nine.encode()) <= 64

    async with sessions() as session, session.begin():
        answer, event = await answer_from_callback(session, SIGNER, nine, 7001, T0)
    assert (answer.score, answer.channel, answer.ticket_id) == (9, "telegram", ticket)
    assert event == SurveyAnswered(answer.id, ticket, answer.customer_id, 9, "telegram")
    async with sessions() as session, session.begin():
        again, event = await answer_from_callback(
            session, SIGNER, keyboard[0][0]["callback_data"], 7001, T0
        )
    assert (again.id, again.score, event) == (answer.id, 9, None)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SurveyAnswer)) == 1


async def test_an_email_customer_gets_one_signed_link_per_score(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    result = await receive(sessions, email_message("Заказ 12345", "<e2@x>"))
    await _solve(sessions, engine, result.ticket.id)
    [row] = await outbox_rows(sessions)
    ticket = result.ticket.id
    assert row.payload["subject"] == f"Оцените нашу помощь [#{ticket}]"
    assert f"Ваше обращение №{ticket} решено." in row.payload["text"]
    links = [
        line.split(": ", 1)[1]
        for line in row.payload["text"].splitlines()
        if line.split(":")[0].isdigit()
    ]
    assert len(links) == 11 and all(link.startswith(f"{PUBLIC_URL}/survey/") for link in links)
    assert row.payload["html"].count('<a href="https://help.example.ru/survey/') == 11

    token = links[10].rsplit("/", 1)[1]
    async with sessions() as session, session.begin():
        answer, _ = await answer_from_token(session, SIGNER, token, T0)
    assert (answer.score, answer.channel, answer.round) == (10, "email", 0)


async def test_forged_or_foreign_answers_are_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await make_customer(sessions, "Чужой", telegram=9009)
    result = await receive(sessions, telegram_message("Заказ 12345", 1))
    ticket = result.ticket.id
    forged = SurveySigner("another secret").token(ticket, 0, 10)
    async with sessions() as session:
        with pytest.raises(InvalidSurveyAnswer, match="signature"):
            await answer_from_token(session, SIGNER, forged, T0)
        with pytest.raises(InvalidSurveyAnswer, match="signature"):
            await answer_from_token(session, SIGNER, f"{ticket}.0.9.{'0' * 24}", T0)
        with pytest.raises(InvalidSurveyAnswer, match="malformed"):
            await answer_from_token(session, SIGNER, "garbage", T0)
        with pytest.raises(InvalidSurveyAnswer, match="another customer"):
            await answer_from_callback(
                session, SIGNER, SIGNER.callback_data(ticket, 0, 3), 9009, T0
            )
        with pytest.raises(InvalidSurveyAnswer, match="0 to 10"):
            await record_answer(
                session, ticket_id=ticket, round_=0, score=11, channel="call", at=T0
            )
        assert await session.scalar(select(func.count()).select_from(SurveyAnswer)) == 0


async def test_a_reopened_and_solved_again_ticket_is_surveyed_again(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    result = await receive(sessions, email_message("Заказ 12345", "<e3@x>"))
    ticket = result.ticket.id
    await _solve(sessions, engine, ticket)
    await _solve(sessions, engine, ticket)  # the same solve reported twice
    async with sessions() as session, session.begin():
        (await session.get(Ticket, ticket)).reopened_count = 1
    await _solve(sessions, engine, ticket)
    assert len(await outbox_rows(sessions)) == 2


async def test_nps_summary_counts_promoters_and_detractors(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tickets = []
    for n in range(5):
        result = await receive(sessions, telegram_message(f"Вопрос {n}", n, user=7100 + n))
        tickets.append(result.ticket.id)
    async with sessions() as session, session.begin():
        for n, (ticket, score) in enumerate(zip(tickets, [10, 9, 8, 6, 0], strict=True)):
            await record_answer(
                session,
                ticket_id=ticket,
                round_=0,
                score=score,
                channel="telegram",
                at=T0 + timedelta(minutes=n),
            )
    async with sessions() as session:
        summary = await nps_summary(session, T0, T0 + timedelta(hours=1))
        empty = await nps_summary(session, T0 - timedelta(days=1), T0)
    assert (summary.answers, summary.promoters, summary.passives, summary.detractors) == (
        5,
        2,
        1,
        2,
    )
    assert summary.score == 0.0
    assert empty.score is None

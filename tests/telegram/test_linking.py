"""Linking a Telegram account to the customer's other identities: only on evidence."""

from __future__ import annotations

from sqlalchemy import func, select

from callcenter.channels.telegram.models import CallbackRequest
from callcenter.domain.customers import attach_identity, find_customer, resolve_customer
from callcenter.domain.inbox import InboundMessage, ingest
from callcenter.models import (
    Channel,
    Customer,
    IdentityKind,
    Interaction,
    MergeSuggestion,
    Ticket,
    utcnow,
)
from tests.telegram.conftest import Harness

CHAT = 5550002
PHONE = "+79161234567"


async def _earlier_call(harness: Harness, phone: str = PHONE) -> int:
    """A customer who phoned in before ever writing on Telegram."""
    async with harness.sessions() as session, session.begin():
        result = await ingest(
            session,
            InboundMessage(
                channel=Channel.CALL,
                external_id="1732700000.42",
                identity_kind=IdentityKind.PHONE,
                identity_value=phone,
                occurred_at=utcnow(),
                text="Звонок: где заказ №7777?",
            ),
        )
        return result.customer.id


async def test_shared_phone_merges_with_the_customer_who_called(harness: Harness) -> None:
    caller_id = await _earlier_call(harness)
    harness.api.push_message(CHAT, "Добрый день, по поводу заказа №7777")
    await harness.exchange()
    harness.api.push_message(CHAT, contact={"phone_number": "79161234567"})
    await harness.exchange()
    assert harness.api.sent[-1].text == f"Спасибо! Номер {PHONE} сохранён."

    async with harness.sessions() as session:
        telegram_owner = await find_customer(session, IdentityKind.TELEGRAM, CHAT)
        phone_owner = await find_customer(session, IdentityKind.PHONE, PHONE)
        assert telegram_owner is not None and phone_owner is not None
        assert telegram_owner.id == phone_owner.id == caller_id
        owners = set(await session.scalars(select(Interaction.customer_id)))
        assert owners == {caller_id}  # the Telegram messages moved to the caller's profile
        assert await session.scalar(select(func.count()).select_from(MergeSuggestion)) == 0
        live = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None))
        )
        assert live == 1


async def test_phone_of_someone_with_another_telegram_is_only_suggested(harness: Harness) -> None:
    async with harness.sessions() as session, session.begin():
        other, _ = await resolve_customer(session, IdentityKind.TELEGRAM, 777001)
        await attach_identity(session, other, IdentityKind.PHONE, PHONE)
        other_id = other.id
    harness.api.push_message(CHAT, contact={"phone_number": PHONE})
    await harness.exchange()
    async with harness.sessions() as session:
        mine = await find_customer(session, IdentityKind.TELEGRAM, CHAT)
        assert mine is not None and mine.id != other_id
        [suggestion] = await session.scalars(select(MergeSuggestion))
        assert {suggestion.customer_id, suggestion.other_customer_id} == {mine.id, other_id}
        assert suggestion.evidence == PHONE
        assert (await find_customer(session, IdentityKind.PHONE, PHONE)).id == other_id


async def test_someone_elses_contact_card_is_not_linked(harness: Harness) -> None:
    caller_id = await _earlier_call(harness)
    harness.api.push_message(CHAT, contact={"phone_number": PHONE, "user_id": 999999})
    await harness.exchange()
    assert harness.api.sent[-1].text.startswith("Пожалуйста, поделитесь своим номером")
    async with harness.sessions() as session:
        mine = await find_customer(session, IdentityKind.TELEGRAM, CHAT)
        assert mine is not None and mine.id != caller_id
        [suggestion] = await session.scalars(select(MergeSuggestion))
        assert suggestion.reason == "mentioned-phone"


async def test_typed_email_of_another_customer_is_a_suggestion_never_a_merge(
    harness: Harness,
) -> None:
    async with harness.sessions() as session, session.begin():
        by_mail, _ = await resolve_customer(session, IdentityKind.EMAIL, "Olga@Example.ru")
        mail_id = by_mail.id
    harness.api.push_message(CHAT, "Я писала вам с почты olga@example.ru про возврат")
    await harness.exchange()
    async with harness.sessions() as session:
        mine = await find_customer(session, IdentityKind.TELEGRAM, CHAT)
        assert mine is not None and mine.id != mail_id
        [suggestion] = await session.scalars(select(MergeSuggestion))
        assert suggestion.reason == "mentioned-email"
        assert suggestion.evidence == "olga@example.ru"
        assert {suggestion.customer_id, suggestion.other_customer_id} == {mine.id, mail_id}
        assert (await session.get(Customer, mail_id)).merged_into_id is None


async def test_call_me_with_a_known_phone_creates_a_callback_task_once(harness: Harness) -> None:
    harness.api.push_message(CHAT, contact={"phone_number": PHONE})
    harness.api.push_message(CHAT, "Хочу вернуть деньги за заказ №4444")
    await harness.exchange()
    harness.api.push_callback_query(CHAT, "callme")
    await harness.exchange()
    harness.api.push_callback_query(CHAT, "callme")
    await harness.exchange()
    texts = [m.text for m in harness.api.sent[-2:]]
    assert texts == [
        f"Хорошо, мы перезвоним вам на номер {PHONE}.",
        f"Заявка на звонок уже принята, мы перезвоним на номер {PHONE}.",
    ]
    async with harness.sessions() as session:
        [callback] = await session.scalars(select(CallbackRequest))
        ticket = await session.scalar(select(Ticket))
        assert callback.phone == PHONE and callback.ticket_id == ticket.id
        assert callback.channel == "telegram" and callback.due_at is not None


async def test_an_nps_button_stores_the_score_once_and_a_forged_one_nothing(
    harness: Harness,
) -> None:
    from callcenter.automation.models import SurveyAnswer
    from callcenter.automation.surveys import SurveySigner

    harness.api.push_message(CHAT, "Хочу вернуть деньги за заказ №4444")
    await harness.exchange()
    async with harness.sessions() as session:
        ticket = await session.scalar(select(Ticket))
    signer = SurveySigner(harness.settings.session_key)
    good = signer.callback_data(ticket.id, 1, 9)
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    for data in (good, good, forged):
        harness.api.push_callback_query(CHAT, data)
        await harness.exchange()

    assert [a["text"] for a in harness.api.callback_answers[-3:]] == [
        "Спасибо за оценку!",
        "Спасибо за оценку!",
        "Эта оценка не принята: кнопка устарела.",
    ]
    async with harness.sessions() as session:
        [answer] = await session.scalars(select(SurveyAnswer))
        assert (answer.ticket_id, answer.score, answer.channel) == (ticket.id, 9, "telegram")

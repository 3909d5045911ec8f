"""The Bitrix24 connector against a local portal speaking the REST webhook protocol."""

from __future__ import annotations

import aiohttp
import pytest

from callcenter.crm.base import CallPush, Contact, MessagePush, Ref, TicketPush
from callcenter.crm.bitrix import Bitrix24
from callcenter.outbox import PermanentFailure, RetryLater
from tests.crm.fakes import (
    EXPIRED,
    QUERY_LIMIT,
    SERVER_ERROR,
    Failure,
    FakeBitrix24,
    MemorySteps,
)


def ivan_with_deals(fake: FakeBitrix24) -> None:
    fake.companies[7] = {"TITLE": "ООО «Ромашка»"}
    fake.contacts[42] = {
        "NAME": "Иван",
        "LAST_NAME": "Петров",
        "COMPANY_ID": "7",
        "ASSIGNED_BY_ID": "1",
        "PHONE": [{"ID": "1", "VALUE": "+79161234567", "VALUE_TYPE": "WORK"}],
        "EMAIL": [{"ID": "2", "VALUE": "ivan@mail.ru", "VALUE_TYPE": "WORK"}],
    }
    for deal_id, stage, semantic, amount, modified in (
        (1, "WON", "S", "120000.00", "2026-10-01T10:00:00+03:00"),
        (2, "WON", "S", "30500.50", "2026-11-01T10:00:00+03:00"),
        (3, "PREPARATION", "P", "99000.00", "2026-11-20T10:00:00+03:00"),
    ):
        fake.deals[deal_id] = {
            "CONTACT_ID": "42",
            "STAGE_ID": stage,
            "STAGE_SEMANTIC_ID": semantic,
            "OPPORTUNITY": amount,
            "CURRENCY_ID": "RUB",
            "DATE_MODIFY": modified,
        }


async def test_lookup_by_phone_gives_company_manager_stage_and_lifetime_value(
    bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    ivan_with_deals(bitrix_fake)

    profile = await bitrix.lookup(phone="+79161234567")

    assert profile is not None
    assert profile.crm_id == "contact:42" and profile.name == "Иван Петров"
    assert profile.company == "ООО «Ромашка»"
    assert profile.manager == "Ольга Смирнова"
    assert profile.deal_stage == "Подготовка документов"  # the most recently changed deal
    assert profile.lifetime_value == "150\u00a0500.50 RUB"  # won deals only
    assert bitrix_fake.calls[0] == (
        "crm.duplicate.findbycomm",
        {"entity_type": "CONTACT", "type": "PHONE", "values": ["+79161234567"]},
    )


async def test_lookup_by_email_falls_back_to_a_lead_and_unknown_is_none(
    bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    bitrix_fake.leads[9] = {
        "NAME": "Мария",
        "COMPANY_TITLE": "ИП Соколова",
        "ASSIGNED_BY_ID": "1",
        "STATUS_ID": "IN_PROCESS",
        "EMAIL": [{"VALUE": "maria@example.ru", "VALUE_TYPE": "WORK"}],
    }

    profile = await bitrix.lookup(email="maria@example.ru")

    assert profile is not None
    assert (profile.crm_id, profile.company, profile.manager, profile.deal_stage) == (
        "lead:9",
        "ИП Соколова",
        "Ольга Смирнова",
        "В работе",
    )
    assert await bitrix.lookup(phone="+79990000000") is None


@pytest.mark.parametrize(
    ("failure", "retry_after"), [(QUERY_LIMIT, 1.0), (EXPIRED, None), (SERVER_ERROR, None)]
)
async def test_rate_limit_expired_token_and_server_errors_are_retried(
    bitrix: Bitrix24, bitrix_fake: FakeBitrix24, failure: Failure, retry_after: float | None
) -> None:
    bitrix_fake.failures.append(failure)

    with pytest.raises(RetryLater) as caught:
        await bitrix.lookup(phone="+79161234567")

    assert failure.body["error"] in str(caught.value)
    assert caught.value.retry_after == retry_after
    assert await bitrix.lookup(phone="+79161234567") is None  # the next try goes through


async def test_a_refused_request_is_permanent_and_a_wrong_code_is_retried(
    bitrix: Bitrix24, bitrix_fake: FakeBitrix24, http
) -> None:  # type: ignore[no-untyped-def]
    bitrix_fake.failures.append(
        Failure(400, {"error": "ERROR_CORE", "error_description": "Lead title is required"})
    )
    with pytest.raises(PermanentFailure, match="ERROR_CORE"):
        await bitrix.call("crm.lead.add", {"fields": {}})

    wrong = Bitrix24(http, bitrix.base.split("/rest/")[0], FakeBitrix24.USER, "revoked")
    with pytest.raises(RetryLater, match="INVALID_CREDENTIALS"):
        await wrong.lookup(phone="+79161234567")


async def test_a_ticket_is_a_lead_for_a_stranger_and_a_deal_for_a_known_contact(
    bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    stranger = Contact("Пётр", ["+79035550101"], ["petr@example.ru"])
    lead = await bitrix.push_ticket(
        TicketPush(5, "Не пришёл заказ", "Где заказ 12345?", "email", stranger)
    )

    assert lead.type == "lead"
    fields = bitrix_fake.leads[int(lead.id)]
    assert fields["TITLE"] == "#5 Не пришёл заказ" and fields["COMMENTS"] == "Где заказ 12345?"
    assert fields["PHONE"] == [{"VALUE": "+79035550101", "VALUE_TYPE": "WORK"}]
    assert fields["EMAIL"] == [{"VALUE": "petr@example.ru", "VALUE_TYPE": "WORK"}]

    ivan_with_deals(bitrix_fake)
    deal = await bitrix.push_ticket(
        TicketPush(6, "Возврат", "Хочу вернуть", "telegram", Contact("Иван", ["+79161234567"]))
    )
    assert deal.type == "deal" and bitrix_fake.deals[int(deal.id)]["CONTACT_ID"] == "42"

    await bitrix.push_message(MessagePush(77, 6, "telegram", "И ещё вопрос"), deal)
    assert bitrix_fake.comments == [
        {"ENTITY_ID": deal.id, "ENTITY_TYPE": "deal", "COMMENT": "И ещё вопрос"}
    ]


async def test_a_call_is_registered_finished_and_its_recording_attached(
    bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    ref = await bitrix.push_call(
        CallPush(
            interaction_id=31,
            phone="+79161234567",
            started_at="2026-11-28T10:15:00+00:00",
            duration_seconds=95,
            answered=True,
            recording_url="https://help.example.ru/calls/31/recording",
        ),
        MemorySteps(),
    )

    assert ref == Ref("call", next(iter(bitrix_fake.external_calls)))
    call = bitrix_fake.external_calls[ref.id]
    assert call["register"] == {
        "USER_ID": 1,
        "PHONE_NUMBER": "+79161234567",
        "TYPE": 2,
        "CALL_START_DATE": "2026-11-28T10:15:00+00:00",
        "CRM_CREATE": 1,
        "SHOW": 0,
    }
    assert call["finish"]["DURATION"] == 95 and call["finish"]["STATUS_CODE"] == "200"
    assert call["record"]["RECORD_URL"] == "https://help.example.ru/calls/31/recording"


async def test_a_missed_call_is_finished_as_missed_without_a_recording(
    bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    ref = await bitrix.push_call(
        CallPush(32, "+79161234567", "2026-11-28T10:20:00+00:00", 0, False), MemorySteps()
    )

    assert bitrix_fake.external_calls[ref.id]["finish"]["STATUS_CODE"] == "304"
    assert "record" not in bitrix_fake.external_calls[ref.id]


async def test_a_call_is_registered_to_the_agent_who_took_it(
    bitrix_server: tuple[FakeBitrix24, str], http: aiohttp.ClientSession
) -> None:
    fake, url = bitrix_server
    fake.users[15] = {"ID": "15", "NAME": "Анна", "EMAIL": "Anna@Shop.ru", "ACTIVE": True}
    bitrix = Bitrix24(http, url, FakeBitrix24.USER, FakeBitrix24.CODE, users={"petrov": 22})

    def call(interaction_id: int, agent: str) -> CallPush:
        return CallPush(
            interaction_id, "+79161234567", "2026-11-28T10:20:00+00:00", 60, True, agent=agent
        )

    users = {}
    for interaction_id, agent in (
        (41, "anna@shop.ru"),
        (42, "petrov"),
        (43, "nobody@shop.ru"),
        (44, "sidorov"),
        (45, ""),
        (46, "anna@shop.ru"),
    ):
        steps = MemorySteps()
        ref = await bitrix.push_call(call(interaction_id, agent), steps)
        registered = fake.external_calls[ref.id]
        assert registered["register"]["USER_ID"] == registered["finish"]["USER_ID"]
        users[agent or "-"] = (registered["register"]["USER_ID"], steps.get("user"))

    assert users == {
        "anna@shop.ru": (15, "15"),  # her login is her Bitrix24 email
        "petrov": (22, "22"),  # set in bitrix24_users
        "nobody@shop.ru": (1, "1"),  # no such Bitrix24 user: the webhook's user
        "sidorov": (1, "1"),
        "-": (1, "1"),
    }
    assert fake.methods().count("user.get") == 2  # one per email, then cached


async def test_a_retried_call_push_keeps_the_user_it_was_registered_to(
    bitrix_server: tuple[FakeBitrix24, str], http: aiohttp.ClientSession
) -> None:
    fake, url = bitrix_server
    bitrix = Bitrix24(http, url, FakeBitrix24.USER, FakeBitrix24.CODE, users={"petrov": 22})
    steps = MemorySteps()
    fake.failures_for["telephony.externalcall.finish"] = [SERVER_ERROR]
    push = CallPush(47, "+79161234567", "2026-11-28T10:20:00+00:00", 60, True, agent="petrov")
    with pytest.raises(RetryLater):
        await bitrix.push_call(push, steps)
    bitrix.users.clear()  # the admin changed the mapping meanwhile
    ref = await bitrix.push_call(push, steps)
    assert fake.external_calls[ref.id]["finish"]["USER_ID"] == 22


async def test_a_pipeline_stage_is_named_from_its_own_list_and_names_are_cached(
    bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    ivan_with_deals(bitrix_fake)
    bitrix_fake.deals[4] = {
        **bitrix_fake.deals[3],
        "STAGE_ID": "C2:PAYMENT",
        "DATE_MODIFY": "2026-11-27",
    }
    bitrix_fake.statuses["DEAL_STAGE_2"] = {"C2:PAYMENT": "Ждём оплату"}

    assert (await bitrix.lookup(phone="+79161234567")).deal_stage == "Ждём оплату"  # type: ignore[union-attr]
    await bitrix.lookup(phone="+79161234567")
    assert bitrix_fake.methods().count("crm.status.list") == 1


async def test_a_timeout_is_retried_and_named(bitrix: Bitrix24, bitrix_fake: FakeBitrix24) -> None:
    bitrix_fake.hang.set()
    with pytest.raises(RetryLater, match=r"crm\.duplicate\.findbycomm: TimeoutError"):
        await bitrix.call(
            "crm.duplicate.findbycomm",
            {"entity_type": "CONTACT", "type": "PHONE", "values": ["+79161234567"]},
            timeout=aiohttp.ClientTimeout(total=0.2),
        )

"""The Zoho CRM connector against a local accounts server and /crm/v7 API."""

from __future__ import annotations

import pytest

from callcenter.crm.base import CallPush, Contact, MessagePush, TicketPush
from callcenter.crm.zoho import ZohoCrm
from callcenter.outbox import PermanentFailure, RetryLater
from tests.crm.fakes import Failure, FakeZoho, MemorySteps


def ivan(fake: FakeZoho) -> None:
    fake.contacts.append(
        {
            "id": "4150868000000224005",
            "Full_Name": "Иван Петров",
            "Phone": "+79161234567",
            "Email": "ivan@mail.ru",
            "Account_Name": {"name": "ООО «Ромашка»", "id": "4150868000000224001"},
            "Owner": {"name": "Ольга Смирнова", "id": "4150868000000225013"},
        }
    )
    for stage, amount, modified in (
        ("Closed Won", 120000, "2026-10-01T10:00:00+03:00"),
        ("Closed Won", 30500.5, "2026-11-01T10:00:00+03:00"),
        ("Negotiation/Review", 99000, "2026-11-20T10:00:00+03:00"),
    ):
        fake.deals.append(
            {
                "Stage": stage,
                "Amount": amount,
                "Currency": "RUB",
                "Modified_Time": modified,
                "Contact_Name": {"id": "4150868000000224005", "name": "Иван Петров"},
            }
        )


async def test_lookup_refreshes_a_token_first_and_reads_contact_and_deals(
    zoho: ZohoCrm, zoho_fake: FakeZoho
) -> None:
    ivan(zoho_fake)

    profile = await zoho.lookup(phone="+79161234567")

    assert zoho_fake.token_requests == 1
    assert profile is not None
    assert (profile.company, profile.manager, profile.deal_stage) == (
        "ООО «Ромашка»",
        "Ольга Смирнова",
        "Negotiation/Review",
    )
    assert profile.lifetime_value == "150\u00a0500.50 RUB"
    assert zoho_fake.requests[0] == ("GET", "Contacts/search", {"phone": "+79161234567"})


async def test_no_match_is_a_204_and_gives_none(zoho: ZohoCrm, zoho_fake: FakeZoho) -> None:
    assert await zoho.lookup(phone="+79990000000", email="nobody@example.ru") is None
    assert [r[1] for r in zoho_fake.requests] == ["Contacts/search", "Contacts/search"]


async def test_an_expired_token_is_refreshed_once_and_the_request_repeated(
    zoho: ZohoCrm, zoho_fake: FakeZoho
) -> None:
    ivan(zoho_fake)
    assert await zoho.lookup(email="ivan@mail.ru") is not None
    zoho_fake.expire_tokens()

    profile = await zoho.lookup(email="ivan@mail.ru")

    assert profile is not None and profile.name == "Иван Петров"
    assert zoho_fake.token_requests == 2


async def test_a_refused_refresh_token_is_retried_later(zoho: ZohoCrm, zoho_fake: FakeZoho) -> None:
    zoho._credentials["refresh_token"] = "revoked"
    with pytest.raises(RetryLater, match="invalid_code"):
        await zoho.lookup(phone="+79161234567")


@pytest.mark.parametrize(
    ("failure", "retry_after"),
    [
        (
            Failure(
                429,
                {"code": "TOO_MANY_REQUESTS", "details": {}, "message": "limit", "status": "error"},
                {"Retry-After": "30"},
            ),
            30.0,
        ),
        (Failure(500, {"code": "INTERNAL_ERROR", "details": {}, "status": "error"}), None),
    ],
)
async def test_rate_limit_and_server_errors_are_retried(
    zoho: ZohoCrm, zoho_fake: FakeZoho, failure: Failure, retry_after: float | None
) -> None:
    zoho_fake.failures.append(failure)
    with pytest.raises(RetryLater, match=failure.body["code"]) as caught:
        await zoho.lookup(phone="+79161234567")
    assert caught.value.retry_after == retry_after


async def test_a_mandatory_field_error_is_permanent(zoho: ZohoCrm, zoho_fake: FakeZoho) -> None:
    zoho_fake.failures.append(
        Failure(
            400,
            {
                "code": "MANDATORY_NOT_FOUND",
                "details": {"api_name": "Last_Name"},
                "status": "error",
            },
        )
    )
    with pytest.raises(PermanentFailure, match="MANDATORY_NOT_FOUND"):
        await zoho.push_ticket(TicketPush(1, "s", "t", "email", Contact("", [], ["a@b.ru"])))


async def test_ticket_lead_note_and_call(zoho: ZohoCrm, zoho_fake: FakeZoho) -> None:
    ivan(zoho_fake)
    lead = await zoho.push_ticket(
        TicketPush(
            5, "Не пришёл заказ", "Где заказ 12345?", "email", Contact("Пётр", ["+79035550101"])
        )
    )
    await zoho.push_message(MessagePush(8, 5, "email", "Спасибо, жду"), lead)
    await zoho.push_call(
        CallPush(31, "+79161234567", "2026-11-28T10:15:00+00:00", 95, True, "https://h/rec"),
        MemorySteps(),
    )

    [lead_row] = zoho_fake.records["Leads"]
    assert lead_row["id"] == lead.id and lead_row["Last_Name"] == "Пётр"
    assert lead_row["Phone"] == "+79035550101"
    assert "Где заказ 12345?" in lead_row["Description"]
    [note] = zoho_fake.records["Notes"]
    assert note["Parent_Id"] == {"module": {"api_name": "Leads"}, "id": lead.id}
    assert note["Note_Content"] == "Спасибо, жду"
    [call] = zoho_fake.records["Calls"]
    assert call["Call_Type"] == "Inbound" and call["Call_Duration"] == "01:35"
    assert call["Who_Id"] == {"id": "4150868000000224005"} and call["$se_module"] == "Contacts"

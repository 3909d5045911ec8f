"""The screen-pop card carries the CRM's fields, and never waits long for a CRM that hangs."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.crm.bitrix import Bitrix24
from callcenter.crm.lookup import CrmLookup
from callcenter.health import HealthRegistry, State
from callcenter.screenpop.card import build_card
from tests.crm.fakes import FakeBitrix24
from tests.crm.test_bitrix import ivan_with_deals
from tests.screenpop.test_card import NOW, ivan_wrote_in_telegram_and_email

CRM_FIELDS = {
    "company": "ООО «Ромашка»",
    "manager": "Ольга Смирнова",
    "deal_stage": "Подготовка документов",
    "lifetime_value": "150\u00a0500.50 RUB",
}


async def test_the_card_shows_company_manager_stage_and_value_from_the_crm(
    session: AsyncSession, bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    customer_id = await ivan_wrote_in_telegram_and_email(session)
    ivan_with_deals(bitrix_fake)
    lookup = CrmLookup(bitrix, timeout=10, health=HealthRegistry())

    card = await build_card(session, "8 916 123-45-67", NOW, crm=lookup)

    assert card.known and card.customer_id == customer_id
    assert card.crm == CRM_FIELDS
    assert card.as_dict()["crm"] == CRM_FIELDS
    # a caller only the CRM knows still gets its fields on the 'unknown' card
    bitrix_fake.contacts[43] = {
        "NAME": "Пётр",
        "COMPANY_ID": "7",
        "PHONE": [{"VALUE": "+79035550101", "VALUE_TYPE": "WORK"}],
    }
    stranger = await build_card(session, "8 903 555-01-01", NOW, crm=lookup)
    assert not stranger.known
    assert stranger.crm == {
        "company": "ООО «Ромашка»",
        "manager": "",
        "deal_stage": "",
        "lifetime_value": "",
    }
    bitrix_fake.calls.clear()
    await build_card(session, "+79161234567", NOW, crm=lookup)
    assert bitrix_fake.calls == []  # cached


async def test_a_hanging_crm_costs_the_card_only_the_lookup_timeout(
    session: AsyncSession, bitrix: Bitrix24, bitrix_fake: FakeBitrix24
) -> None:
    await ivan_wrote_in_telegram_and_email(session)
    ivan_with_deals(bitrix_fake)
    bitrix_fake.hang.set()
    health = HealthRegistry()
    lookup = CrmLookup(bitrix, timeout=0.3, health=health)

    started = time.perf_counter()
    card = await asyncio.wait_for(build_card(session, "+79161234567", NOW, crm=lookup), 10)
    elapsed = time.perf_counter() - started

    assert card.known and card.name == "Иван Петров" and card.crm is None
    assert elapsed < 5, elapsed  # bounded by the 0.3 s timeout, never by the hanging CRM
    assert bitrix_fake.calls[0][0] == "crm.duplicate.findbycomm"

    # the lookup kept going: once the CRM answers, the next card has the fields from the cache
    bitrix_fake.hang.clear()
    bitrix_fake.release.set()
    for _ in range(100):
        if lookup._running == {}:
            break
        await asyncio.sleep(0.05)
    card = await build_card(session, "+79161234567", NOW, crm=lookup)
    assert card.crm == CRM_FIELDS
    assert {h.name: h.state for h in health.snapshot()}["crm"] is State.OK


async def test_a_failing_crm_is_reported_and_not_asked_again_at_once(
    session: AsyncSession, http
) -> None:  # type: ignore[no-untyped-def]
    health = HealthRegistry()
    dead = Bitrix24(http, "http://127.0.0.1:9", 1, "code")  # nothing listens on port 9
    lookup = CrmLookup(dead, timeout=10, health=health)

    card = await build_card(session, "+79161234567", NOW, crm=lookup)

    assert card.crm is None and not card.known
    [crm] = [h for h in health.snapshot() if h.name == "crm"]
    assert crm.state is State.FAILING and "bitrix24 crm.duplicate.findbycomm" in crm.last_error
    assert await lookup.profile(phone="+79161234567") is None  # from the failure cache

"""Customer data rights: export everything as JSON, erase what identifies a person."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.domain.customers import merge_customers
from callcenter.domain.privacy import ERASED
from callcenter.models import AuditLog, Call, Customer, Identity, Interaction, OrderRef, Ticket
from tests.web.seeding import customer_with_history


@pytest.fixture
async def ivan(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> int:
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "call.wav").write_bytes(b"RIFF")
    (tmp_path / "attachments").mkdir()
    (tmp_path / "attachments" / "receipt.pdf").write_bytes(b"%PDF")
    async with sessions() as db, db.begin():
        customer = await customer_with_history(db, recording="recordings/call.wav")
        other = await customer_with_history(
            db, "Ваня", phone="+79990001122", email="vanya@example.com", telegram=(77, "@vanya")
        )
        await merge_customers(db, other.id, customer.id, actor_name="test")
    return customer.id


async def _audit(sessions, action: str) -> list[AuditLog]:
    async with sessions() as db:
        return list(await db.scalars(select(AuditLog).where(AuditLog.action == action)))


async def test_export_has_everything_and_is_audited(signed_in, ivan, sessions, staff) -> None:
    supervisor = await signed_in("sveta")
    response = await supervisor.get(f"/customers/{ivan}/export.json")
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = await response.json()
    assert data["customer"]["display_name"] == "Иван Петров"
    values = {i["value"] for i in data["identities"]}
    assert {"+79161234567", "ivan.petrov@example.ru", "123456789", "+79990001122"} <= values
    assert len(data["interactions"]) == 6
    assert any(i["html"] and "Заказ 123456" in i["html"] for i in data["interactions"])
    assert data["calls"][0]["recording_path"] == "recordings/call.wav"
    assert [p["display_name"] for p in data["merged_profiles"]] == ["Ваня"]
    [entry] = await _audit(sessions, "customer.export")
    assert entry.actor == "sveta" and entry.target_id == str(ivan)


async def test_erase_removes_identity_keeps_counts_and_is_audited(
    signed_in, ivan, sessions, tmp_path: Path
) -> None:
    admin = await signed_in("root")
    async with sessions() as db:
        before = await db.scalar(select(func.count()).select_from(Interaction))
    refused = await admin.post_form(f"/customers/{ivan}/erase", {"confirm": "nope"})
    assert refused.status == 400
    response = await admin.post_form(f"/customers/{ivan}/erase", {"confirm": str(ivan)})
    assert response.status == 303
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Identity)) == 0
        assert await db.scalar(select(func.count()).select_from(OrderRef)) == 0
        items = list(await db.scalars(select(Interaction)))
        assert len(items) == before
        assert {i.text for i in items} == {ERASED}
        assert all(i.html is None and i.attachments == [] for i in items)
        calls = list(await db.scalars(select(Call)))
        assert [(c.recording_path, c.caller_number, c.talk_seconds) for c in calls] == [
            (None, "", 95),
            (None, "", 95),
        ]
        assert {t.subject for t in await db.scalars(select(Ticket))} == {ERASED}
        names = {c.display_name for c in await db.scalars(select(Customer))}
        assert names == {""}
    assert not (tmp_path / "recordings" / "call.wav").exists()
    assert not (tmp_path / "attachments" / "receipt.pdf").exists()
    [entry] = await _audit(sessions, "customer.erase")
    assert entry.actor == "root" and entry.details["identities"] == 6
    page = await (await admin.get(f"/customers/{ivan}")).text()
    assert "Иван" not in page and "удалены по запросу" in page


async def test_an_erased_customer_cannot_be_found(signed_in, ivan) -> None:
    admin = await signed_in("root")
    await admin.post_form(f"/customers/{ivan}/erase", {"confirm": str(ivan)})
    for query in ("Иван", "+79161234567", "ivan.petrov@example.ru", "123456"):
        html = await (await admin.get("/agent", params={"q": query})).text()
        assert "Никого не нашлось" in html, query


async def test_only_an_admin_erases(signed_in, ivan) -> None:
    supervisor = await signed_in("sveta")
    response = await supervisor.post_form(f"/customers/{ivan}/erase", {"confirm": str(ivan)})
    assert response.status == 403

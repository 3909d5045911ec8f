"""Erasure leaves nothing that identifies the customer in any table or file, keeps the counts,
and leaves other customers alone; export finds the customer in every table."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.models import Rule, RuleFiring, SurveyAnswer
from callcenter.channels.email.models import EmailFailure
from callcenter.channels.telegram.models import CallbackRequest, TelegramUpdate
from callcenter.channels.telephony.models import CallSurvey
from callcenter.domain import audit
from callcenter.domain.customers import attach_identity, create_customer
from callcenter.domain.privacy import erase_customer, export_customer, remove_files
from callcenter.models import (
    Call,
    Channel,
    Direction,
    IdentityKind,
    Interaction,
    MergeSuggestion,
    Outbox,
    OutboxStatus,
    ScreenPop,
    Ticket,
)
from callcenter.schema import metadata
from callcenter.workspace_models import WrapUp
from tests.web.seeding import T0, customer_with_history

SECRET_QUESTION = "Мой секретный вопрос про диван"
CALLBACK_NOTE = "Перезвонить Ивану Петрову после обеда"
OUTBOX_TEXT = "Иван Петров, ваш заказ в пути"
WRAPUP_TEXT = "Клиент просил привезти диван после шести"
MARIA_TEXT = "Мария спрашивает про возврат"

IVAN = [
    "Иван Петров",
    "+79161234567",
    "79161234567",
    "9161234567",
    "ivan.petrov@example.ru",
    "123456789",
    "ivan_petrov",
    "Здравствуйте! Заказ 123456 не пришёл.",
    "Добрый день, заказ 123456 где?",
    SECRET_QUESTION,
    CALLBACK_NOTE,
    OUTBOX_TEXT,
    WRAPUP_TEXT,
]
MARIA = ["Мария Сидорова", "+79035556677", "maria@example.ru", "555000111", MARIA_TEXT]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(root: Path, relative: str, data: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def telegram_update(update_id: int, user_id: int, first_name: str, username: str, text: str):
    return TelegramUpdate(
        update_id=update_id,
        error=f"ValueError: could not handle {text!r}",
        raw={
            "update_id": update_id,
            "message": {
                "message_id": 9,
                "date": 1740819600,
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": first_name,
                    "username": username,
                },
                "chat": {"id": user_id, "type": "private", "first_name": first_name},
                "text": text,
            },
        },
    )


@dataclass
class World:
    ivan: int
    maria: int
    files: dict[str, Path]


async def seed(db: AsyncSession, data_dir: Path) -> World:
    """Иван in every table and on disk; Мария, who must survive his erasure, beside him."""
    logo = b"shop logo, sent by both"
    receipt = "Чек для Иван Петров".encode()
    original = b"From: ivan.petrov@example.ru\r\nSubject: order\r\n\r\nHello"
    failed = ("From: Иван Петров <ivan.petrov@example.ru>\r\n\r\n" + SECRET_QUESTION).encode()
    files = {
        "receipt": put(data_dir, f"attachments/{sha(receipt)}", receipt),
        "original": put(data_dir, f"attachments/{sha(original)}", original),
        "telegram": put(data_dir, "attachments/telegram/AgADivan.jpg", "Иван Петров".encode()),
        "recording": put(data_dir, "recordings/ivan.wav", b"RIFF Ivan"),
        "failed": put(data_dir, f"email-failed/{sha(failed)}.eml", failed),
        "logo": put(data_dir, f"attachments/{sha(logo)}", logo),
        "maria": put(data_dir, "attachments/telegram/AgADmaria.jpg", MARIA_TEXT.encode()),
    }

    ivan = await customer_with_history(db, recording="recordings/ivan.wav")
    ivan.notes = CALLBACK_NOTE
    [email, telegram, call] = list(
        await db.scalars(
            select(Interaction).where(Interaction.customer_id == ivan.id).order_by(Interaction.id)
        )
    )
    email.attachments = [
        {"kind": "original", "sha256": sha(original), "path": sha(original)},
        {"kind": "file", "filename": "чек.pdf", "sha256": sha(receipt), "path": sha(receipt)},
        {"kind": "file", "filename": "logo.png", "sha256": sha(logo), "path": sha(logo)},
    ]
    telegram.attachments = [{"kind": "photo", "path": "telegram/AgADivan.jpg"}]
    ticket = await db.scalar(select(Ticket).where(Ticket.customer_id == ivan.id))
    linkedid = await db.scalar(select(Call.linkedid).where(Call.interaction_id == call.id))

    maria = await create_customer(db, "Мария Сидорова")
    await attach_identity(db, maria, IdentityKind.PHONE, "+79035556677")
    await attach_identity(db, maria, IdentityKind.EMAIL, "maria@example.ru")
    await attach_identity(db, maria, IdentityKind.TELEGRAM, 555000111, display="@maria")
    db.add(
        Interaction(
            customer_id=maria.id,
            channel=Channel.TELEGRAM,
            direction=Direction.INBOUND,
            external_id="555000111:1",
            text=MARIA_TEXT,
            attachments=[
                {"kind": "photo", "path": "telegram/AgADmaria.jpg"},
                {"kind": "file", "sha256": sha(logo), "path": sha(logo)},
            ],
            occurred_at=T0,
        )
    )

    rule = Rule(name="ack", trigger="message_received")
    db.add(rule)
    await db.flush()
    db.add_all(
        [
            telegram_update(1, 123456789, "Иван", "ivan_petrov", SECRET_QUESTION),
            telegram_update(2, 555000111, "Мария", "maria", MARIA_TEXT),
            TelegramUpdate(update_id=3),  # stored fine: no raw kept
            CallbackRequest(
                customer_id=ivan.id, ticket_id=ticket.id, phone="+79161234567", note=CALLBACK_NOTE
            ),
            CallSurvey(linkedid=linkedid, question="nps", score=9),
            WrapUp(interaction_id=call.id, disposition="Вопрос решён", summary=WRAPUP_TEXT),
            ScreenPop(linkedid=linkedid, customer_id=ivan.id, caller_number="+79161234567"),
            # before anyone knew the number: no customer on the pop, the national form
            ScreenPop(linkedid="earlier-call", caller_number="89161234567"),
            EmailFailure(
                source="imap:shop@example.test/INBOX#7",
                sha256=sha(failed),
                path=str(files["failed"]),
                error="no usable sender",
            ),
            MergeSuggestion(
                customer_id=maria.id,
                other_customer_id=ivan.id,
                reason="phone_in_message",
                evidence="+79161234567",
            ),
            Outbox(
                channel="email",
                recipient="ivan.petrov@example.ru",
                payload={"to_name": "Иван Петров", "text": OUTBOX_TEXT},
            ),
            Outbox(
                channel="telegram",
                recipient="123456789",
                payload={"text": OUTBOX_TEXT},
                status=OutboxStatus.SENT,
                external_id="123456789:77",
            ),
            Outbox(channel="email", recipient="maria@example.ru", payload={"text": MARIA_TEXT}),
            RuleFiring(
                rule_id=rule.id,
                key="ack:1",
                trigger="message_received",
                ticket_id=ticket.id,
                customer_id=ivan.id,
                outcome="partial",
                details=[
                    {
                        "action": "send_email",
                        "status": "skipped",
                        "reason": "3 automatic emails to ivan.petrov@example.ru in the last hour",
                    }
                ],
            ),
            SurveyAnswer(
                ticket_id=ticket.id,
                customer_id=ivan.id,
                score=10,
                channel="email",
                answered_at=T0 + timedelta(days=1),
            ),
        ]
    )
    audit.record(
        db,
        "customer.link_phone",
        actor_name="anna",
        target_type="customer",
        target_id=ivan.id,
        details={"phone": "+79161234567", "new_customer": False},
    )
    await db.flush()
    return World(ivan.id, maria.id, files)


def as_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


async def everything_stored(db: AsyncSession) -> dict[str, str]:
    """Every row of every table as text, by table name."""
    stored = {}
    for table in metadata.sorted_tables:
        rows = (await db.execute(select(table))).all()
        stored[table.name] = "\n".join(" | ".join(as_text(v) for v in row) for row in rows)
    return stored


async def count(db: AsyncSession, model: Any) -> int:
    return await db.scalar(select(func.count()).select_from(model))


async def test_erasure_leaves_nothing_personal_in_any_table_or_file(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions() as db, db.begin():
        world = await seed(db, tmp_path)
    async with sessions() as db:
        before = await everything_stored(db)
        counts = {m: await count(db, m) for m in (Interaction, Call, Ticket, SurveyAnswer)}
    for table in ("telegram_updates", "callback_requests", "screen_pops", "outbox", "audit_log"):
        assert "+79161234567" in before[table] or "123456789" in before[table], table

    async with sessions() as db, db.begin():
        erasure = await erase_customer(db, world.ivan, data_dir=tmp_path)
    assert remove_files(erasure.files, tmp_path) == []

    async with sessions() as db:
        after = await everything_stored(db)
        assert {m: await count(db, m) for m in counts} == counts
        assert await count(db, CallSurvey) == 1
        outbox = {o.id: o for o in await db.scalars(select(Outbox))}
        ivans_outbox = [o for o in outbox.values() if o.recipient == ""]
        assert sorted(o.status for o in ivans_outbox) == [OutboxStatus.FAILED, OutboxStatus.SENT]
    for table, text in after.items():
        for personal in IVAN:
            assert personal not in text, f"{personal!r} is still in {table}"
    for personal in MARIA:
        assert any(personal in text for text in after.values()), personal
    assert "Мария" in after["telegram_updates"]  # her kept update is not his

    for name in ("receipt", "original", "telegram", "recording", "failed"):
        assert not world.files[name].exists(), name
    assert world.files["logo"].exists()  # Мария sent the same picture
    assert world.files["maria"].exists()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for personal in IVAN:
                assert personal.encode() not in content, f"{personal!r} is still in {path}"


async def test_export_finds_the_customer_in_every_table(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions() as db, db.begin():
        world = await seed(db, tmp_path)
    async with sessions() as db, db.begin():
        data = await export_customer(db, world.ivan, data_dir=tmp_path)

    assert data["customer"]["display_name"] == "Иван Петров"
    assert [u["raw"]["message"]["text"] for u in data["telegram_updates"]] == [SECRET_QUESTION]
    assert [c["note"] for c in data["callback_requests"]] == [CALLBACK_NOTE]
    assert [s["score"] for s in data["call_surveys"]] == [9]
    assert [s["score"] for s in data["survey_answers"]] == [10]
    assert sorted(p["caller_number"] for p in data["screen_pops"]) == [
        "+79161234567",
        "89161234567",
    ]
    assert [f["error"] for f in data["email_failures"]] == ["no usable sender"]
    assert [m["evidence"] for m in data["merge_suggestions"]] == ["+79161234567"]
    assert sorted(o["recipient"] for o in data["outbox"]) == [
        "123456789",
        "ivan.petrov@example.ru",
    ]
    assert "ivan.petrov@example.ru" in data["rule_firings"][0]["details"][0]["reason"]
    assert [a["details"].get("phone") for a in data["audit"]] == ["+79161234567"]
    assert len(data["interactions"]) == 3 and len(data["order_refs"]) == 1
    exported = json.dumps(data, ensure_ascii=False, default=str)
    for personal in MARIA:
        assert personal not in exported, personal

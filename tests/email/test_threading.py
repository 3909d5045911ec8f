"""Filing mail under the right ticket: our Message-IDs, References, subject tags, order numbers."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.email.compose import Draft, build_message
from callcenter.channels.email.ingest import EmailIngestor
from callcenter.channels.email.threading import (
    candidate_ids,
    clean_subject,
    outbox_id_of,
    outbox_message_id,
    references_for,
    reply_subject,
    subject_ticket,
    tag_subject,
    ticket_by_ids,
)
from callcenter.models import OutboxStatus
from callcenter.outbox import enqueue
from tests.email import support
from tests.email.support import T0, mail


def test_subject_tags_and_prefixes() -> None:
    assert subject_ticket("Re: Заказ [#1234] не пришёл") == 1234
    assert subject_ticket("Заказ #1234") is None
    assert tag_subject("Заказ 5", 42) == "Заказ 5 [#42]"
    assert tag_subject("Re: Заказ 5 [#42]", 42) == "Re: Заказ 5 [#42]"
    assert tag_subject("Заказ 5", None) == "Заказ 5"
    assert clean_subject("RE: Fwd: Ответ: Заказ 5 [#42]") == "Заказ 5"
    assert reply_subject("Re: Re[2]: Заказ") == "Re: Заказ"
    assert candidate_ids("p@x", ("root@x", "mid@x", "p@x")) == ["p@x", "mid@x", "root@x"]


def test_our_message_ids_are_stable_per_row_and_lead_back_to_it() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    first = outbox_message_id(17, at, "a@example.ru", "shop.example")
    assert first == outbox_message_id(17, at, "a@example.ru", "shop.example")
    assert first != outbox_message_id(
        17, at + timedelta(microseconds=1), "a@example.ru", "shop.example"
    )
    assert first.endswith("@shop.example") and outbox_id_of(first) == 17
    assert outbox_id_of("CAJohn4711@mail.example.com") is None


def test_references_keep_the_root_and_the_newest_and_end_with_the_parent() -> None:
    thread = [f"m{n}@x" for n in range(20)] + ["sha256:abc", "bad id@x"]
    refs = references_for(thread, "m19@x")
    assert refs[0] == "m0@x" and refs[-1] == "m19@x" and len(refs) == 10
    assert "sha256:abc" not in refs and "bad id@x" not in refs


def test_long_references_survive_header_folding() -> None:
    long_ids = tuple(f"{'x' * 90}.{n}@very-long-domain-name.example.com" for n in range(12))
    draft = Draft(
        message_id="1.0123456789abcdef@shop.example",
        sender=support.SHOP,
        to="ivan@example.ru",
        to_name="Иван",
        subject="Очень длинная тема письма " * 8,
        text="Текст",
        html=None,
        language="ru",
        ticket_id=7,
        automatic=False,
        in_reply_to=long_ids[-1],
        references=long_ids,
        date=T0,
    )
    raw = build_message(draft)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    parsed = email.message_from_bytes(raw, policy=default)
    assert parsed["In-Reply-To"] == f"<{long_ids[-1]}>"
    assert parsed["References"].split() == [f"<{i}>" for i in long_ids]
    assert parsed["Subject"] == ("Очень длинная тема письма " * 8).strip()


async def store(sessions, settings, raw: bytes):  # type: ignore[no-untyped-def]
    [outcome] = (await EmailIngestor(settings).store_batch(sessions, [(raw, "test")])).outcomes
    return outcome


async def test_ticket_by_ids_prefers_the_parent_and_refuses_forged_ids(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = support.settings(tmp_path)
    first = await store(
        sessions, settings, mail("a@example.ru", "Один", "Вопрос про доставку", message_id="a1@x")
    )
    second = await store(
        sessions, settings, mail("a@example.ru", "Два", "Хочу вернуть заказ 77", message_id="a2@x")
    )
    async with sessions() as session, session.begin():
        item = enqueue(
            session,
            channel="email",
            recipient="a@example.ru",
            payload={"text": "t"},
            ticket_id=second.ticket_id,
        )
        await session.flush()
        item.status = OutboxStatus.SENT
        ours = outbox_message_id(item.id, item.created_at, item.recipient, "shop.example")
    forged = f"{item.id}.0000000000000000@shop.example"
    async with sessions() as session:
        assert await ticket_by_ids(session, [ours, "a1@x"], "shop.example") == second.ticket_id
        assert await ticket_by_ids(session, ["a1@x", ours], "shop.example") == first.ticket_id
        assert await ticket_by_ids(session, [forged], "shop.example") is None
        assert await ticket_by_ids(session, ["unknown@x"], "shop.example") is None


async def test_without_headers_or_tag_the_same_order_number_finds_the_ticket(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = support.settings(tmp_path)
    sender = "Ольга <olga@example.ru>"
    order = await store(
        sessions, settings, mail(sender, "Заказ 12345", "Где заказ 12345?", message_id="o1@x")
    )
    other = await store(
        sessions,
        settings,
        mail(
            sender,
            "Возврат",
            "Хочу вернуть заказ 99999",
            message_id="o2@x",
            date=T0 + timedelta(hours=1),
        ),
    )
    again = await store(
        sessions,
        settings,
        mail(
            sender,
            "Ещё раз",
            "Так что с заказом 12345?",
            message_id="o3@x",
            date=T0 + timedelta(hours=2),
        ),
    )
    assert other.ticket_id != order.ticket_id
    assert again.ticket_id == order.ticket_id


async def test_long_and_missing_message_ids_still_dedupe(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    settings = support.settings(tmp_path)
    long_id = "z" * 400 + "@example.ru"
    raw = mail("long@example.ru", "Длинный id", "Текст", message_id=long_id)
    stored = await store(sessions, settings, raw)
    assert stored.status == "stored"
    assert (await store(sessions, settings, raw)).status == "duplicate"
    no_id = (support.FIXTURES / "no_message_id.eml").read_bytes()
    assert (await store(sessions, settings, no_id)).status == "stored"
    assert (await store(sessions, settings, no_id)).status == "duplicate"
    keys = sorted(i.external_id for i in await support.emails(sessions))
    assert all(k.startswith("sha256:") and len(k) == 71 for k in keys)


async def test_a_reply_in_the_same_batch_as_its_parent_joins_the_parents_ticket(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    sender = "Ольга <olga@example.ru>"
    parent = mail(sender, "Заказ 11111", "Где заказ 11111?", message_id="p1@x")
    reply = mail(
        sender,
        "Re: Ещё вопрос",
        "А что с заказом 22222?",
        message_id="r1@x",
        in_reply_to="p1@x",
        references=("p1@x",),
        date=T0 + timedelta(minutes=5),
    )
    batch = [(parent, "a"), (reply, "b"), (parent, "c")]
    result = await EmailIngestor(support.settings(tmp_path)).store_batch(sessions, batch)
    first, second, again = result.outcomes
    assert [o.status for o in result.outcomes] == ["stored", "stored", "duplicate"]
    # Threaded by In-Reply-To, not filed by its own order number under a new ticket.
    assert second.ticket_id == first.ticket_id is not None
    assert again.interaction_id == first.interaction_id

"""Agent replies through the outbox: in order, retried on 429 and 5xx, given up on a block."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from callcenter.domain.tickets import record_reply
from callcenter.models import (
    Channel,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Outbox,
    OutboxStatus,
    Ticket,
    utcnow,
)
from callcenter.outbox import enqueue
from tests.telegram.conftest import Harness

CHAT = 5550003


class Clock:
    def __init__(self) -> None:
        self.at = utcnow()

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


async def _ticket(harness: Harness) -> int:
    harness.api.push_message(CHAT, "Хочу вернуть деньги за заказ №5555")
    await harness.exchange()
    harness.api.sent.clear()
    async with harness.sessions() as session:
        return await session.scalar(select(Ticket.id))


async def _reply(harness: Harness, ticket_id: int, text: str) -> int:
    async with harness.sessions() as session, session.begin():
        interaction, _ = await record_reply(
            session, ticket_id, channel=Channel.TELEGRAM, text=text, at=utcnow()
        )
        item = enqueue(
            session,
            channel="telegram",
            recipient=str(CHAT),
            payload={"text": text, "interaction_id": interaction.id},
            ticket_id=ticket_id,
        )
        await session.flush()
        return item.id


async def _rows(harness: Harness) -> list[Outbox]:
    async with harness.sessions() as session:
        return list(await session.scalars(select(Outbox).order_by(Outbox.id)))


async def _drain_with_clock(harness: Harness, clock: Clock, passes: int = 40) -> None:
    harness.channel.outbox.now = clock
    for _ in range(passes):
        await harness.send()
        clock.advance(30)


async def test_429_storm_is_waited_out_in_order(harness: Harness) -> None:
    ticket_id = await _ticket(harness)
    harness.api.fail_next("sendMessage", 429, retry_after=7, count=3)
    first = await _reply(harness, ticket_id, "Первый ответ")
    second = await _reply(harness, ticket_id, "Второй ответ")
    clock = Clock()
    harness.channel.outbox.now = clock
    await harness.send()
    [row, waiting] = [r for r in await _rows(harness) if r.id in (first, second)]
    assert row.status is OutboxStatus.PENDING and "retry after 7" in row.last_error
    assert row.next_attempt_at >= clock.at + timedelta(seconds=7)
    assert waiting.attempts == 0  # held back behind the first
    await _drain_with_clock(harness, clock)
    assert [m.text for m in harness.api.sent] == ["Первый ответ", "Второй ответ"]
    assert len(harness.api.calls_to("sendMessage")) == 3 + 2 + 2  # bot's 2 + 3 refused + 2
    assert {r.status for r in await _rows(harness)} == {OutboxStatus.SENT}


async def test_5xx_storm_and_a_proxy_error_page_are_retried(harness: Harness) -> None:
    ticket_id = await _ticket(harness)
    harness.api.fail_next("sendMessage", 502, count=3)
    harness.api.fail_next("sendMessage", 503, body="<html>nginx</html>", count=2)
    await _reply(harness, ticket_id, "Ответ после сбоя")
    await _reply(harness, ticket_id, "И ещё один")
    await _drain_with_clock(harness, Clock())
    assert [m.text for m in harness.api.sent] == ["Ответ после сбоя", "И ещё один"]
    rows = await _rows(harness)
    assert rows[-2].attempts == 6 and rows[-2].status is OutboxStatus.SENT
    async with harness.sessions() as session:
        texts = list(
            await session.scalars(
                select(Interaction.external_id).where(
                    Interaction.agent_id.is_(None),
                    Interaction.direction == Direction.OUTBOUND,
                    Interaction.text.like("%ещё%"),
                )
            )
        )
    assert texts == [f"{CHAT}:{harness.api.sent[-1].message_id}"]


async def test_blocked_bot_marks_the_identity_and_stops_retrying(harness: Harness) -> None:
    ticket_id = await _ticket(harness)
    harness.api.block_chat(CHAT)
    row_id = await _reply(harness, ticket_id, "Вы тут?")
    await _drain_with_clock(harness, Clock(), passes=5)
    [row] = [r for r in await _rows(harness) if r.id == row_id]
    assert row.status is OutboxStatus.FAILED and row.attempts == 1
    assert "bot was blocked by the user" in row.last_error
    assert len(harness.api.calls_to("sendMessage")) == 2 + 1
    async with harness.sessions() as session:
        identity = await session.scalar(
            select(Identity).where(Identity.kind == IdentityKind.TELEGRAM)
        )
        assert identity is not None and identity.failing
        note = await session.scalar(select(Interaction).where(Interaction.channel == Channel.NOTE))
        assert note is not None and note.ticket_id == ticket_id
        assert note.text == "Сообщение не доставлено: клиент заблокировал бота в Telegram."

    harness.api.unblock_chat(CHAT)
    await _reply(harness, ticket_id, "Снова на связи")
    await _drain_with_clock(harness, Clock(), passes=2)
    assert harness.api.sent[-1].text == "Снова на связи"
    async with harness.sessions() as session:
        identity = await session.scalar(
            select(Identity).where(Identity.kind == IdentityKind.TELEGRAM)
        )
        assert identity is not None and not identity.failing


async def test_a_reply_longer_than_telegram_allows_goes_out_in_parts(harness: Harness) -> None:
    ticket_id = await _ticket(harness)
    paragraph = "Подробная инструкция по возврату товара. " * 40
    text = "\n\n".join([paragraph.strip()] * 4)
    assert len(text) > 4096
    await _reply(harness, ticket_id, text)
    await _drain_with_clock(harness, Clock(), passes=2)
    parts = [m.text for m in harness.api.sent]
    assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
    assert "\n\n".join(parts) == text

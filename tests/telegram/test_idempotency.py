"""The same update twice, or a batch fetched again after a crash, never doubles anything."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from callcenter.channels.telegram.bot import Conversation
from callcenter.channels.telegram.models import TelegramUpdate
from callcenter.channels.telegram.polling import Poller
from callcenter.domain.inbox import InboundMessage, ingest
from callcenter.models import (
    Channel,
    Direction,
    IdentityKind,
    Interaction,
    MergeSuggestion,
    Outbox,
    Ticket,
    utcnow,
)
from tests.telegram.conftest import Harness

CHAT = 5550004


async def _count(harness: Harness, model: type) -> int:
    async with harness.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_a_batch_fetched_again_after_a_crash_is_stored_once(harness: Harness) -> None:
    for text in ("Где заказ №1001?", "Хочу вернуть деньги", "Спасибо"):
        harness.api.push_message(CHAT, text)
    assert await harness.poll() == 3
    # The process dies before its next getUpdates confirms the batch: a new poller starts
    # without an offset and Telegram hands out the same three updates again.
    restarted = Poller(harness.channel.bot, harness.channel.processor, poll_timeout=0)
    assert await restarted.run_once() == 3
    assert harness.api.pending_updates == 3
    await restarted.run_once()
    assert harness.api.pending_updates == 0
    assert [i.text for i in await harness.inbound()] == [
        "Где заказ №1001?",
        "Хочу вернуть деньги",
        "Спасибо",
    ]
    assert await _count(harness, TelegramUpdate) == 3
    outbox_rows = await _count(harness, Outbox)
    await harness.exchange()
    assert await _count(harness, Outbox) == outbox_rows
    assert len(harness.api.sent) == outbox_rows


async def test_same_update_twice_in_one_batch_and_same_message_under_a_new_id(
    harness: Harness,
) -> None:
    update = harness.api.push_message(CHAT, "Где мой заказ №2002?")
    assert update is not None
    harness.api.push_raw(update)  # the same update_id again, still unconfirmed
    harness.api.push_raw(update, keep_id=False)  # same message, new update_id
    await harness.exchange()
    [stored] = await harness.inbound()
    assert stored.text == "Где мой заказ №2002?"
    assert await _count(harness, Ticket) == 1
    assert await _count(harness, TelegramUpdate) == 2
    greeting, status = harness.api.sent
    assert greeting.text.startswith("Здравствуйте")
    assert status.text.startswith("Заказ №2002: доставлен.")


async def test_an_update_that_cannot_be_handled_is_kept_and_the_rest_stored(
    harness: Harness, monkeypatch
) -> None:
    original = Conversation.respond

    async def broken(self, turn, message, result, **kwargs):  # type: ignore[no-untyped-def]
        if message.text == "boom":
            raise ValueError("handler bug")
        await original(self, turn, message, result, **kwargs)

    monkeypatch.setattr(Conversation, "respond", broken)
    harness.api.push_message(CHAT, "Первое")
    harness.api.push_message(CHAT, "boom")
    harness.api.push_message(CHAT, "Третье")
    await harness.exchange()
    assert [i.text for i in await harness.inbound()] == ["Первое", "Третье"]
    async with harness.sessions() as session:
        [failed] = await session.scalars(select(TelegramUpdate).where(TelegramUpdate.error != ""))
    assert failed.error == "ValueError: handler bug"
    assert failed.raw is not None and failed.raw["message"]["text"] == "boom"
    assert harness.api.pending_updates == 0


async def test_a_message_stored_in_an_earlier_batch_arriving_under_a_new_id_is_not_doubled(
    harness: Harness, caplog
) -> None:
    update = harness.api.push_message(CHAT, "Где мой заказ №2003?")
    assert update is not None
    assert await harness.poll() == 1
    harness.api.push_raw(update, keep_id=False)  # same message, new update_id, later batch
    harness.api.push_message(CHAT, "Спасибо")
    with caplog.at_level("INFO", logger="callcenter.channels.telegram.processor"):
        assert await harness.poll() == 2
    # The batch, taken to be all new, met the stored message's unique key and was redone.
    assert "one by one" in caplog.text
    assert [i.text for i in await harness.inbound()] == ["Где мой заказ №2003?", "Спасибо"]
    assert await _count(harness, TelegramUpdate) == 3
    assert await _count(harness, Ticket) == 1


async def test_two_workers_handling_the_same_batch_at_once_store_it_once(
    harness: Harness, caplog
) -> None:
    texts = ["Где заказ №3003?", "Хочу вернуть деньги за заказ 3004", "Спасибо", "Когда привезут?"]
    for text in texts:
        harness.api.push_message(CHAT, text)
    updates = await harness.channel.bot.get_updates(timeout=0)
    assert len(updates) == len(texts)
    processor = harness.channel.processor
    with caplog.at_level("INFO", logger="callcenter.channels.telegram.processor"):
        counts = await asyncio.gather(processor.process(updates), processor.process(updates))

    assert sorted(counts) == [0, len(texts)]
    assert [i.text for i in await harness.inbound()] == texts
    assert await _count(harness, TelegramUpdate) == len(texts)
    async with harness.sessions() as session:
        replies = await session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.direction == Direction.OUTBOUND)
        )
    assert replies == await _count(harness, Outbox) and replies > 0
    # The second worker's claim of the update ids waited for the first's commit and found them
    # all taken: it neither collided with the first nor redid anything one by one.
    assert "one by one" not in caplog.text


async def test_a_batch_of_plain_messages_is_answered_as_one_by_one(
    harness: Harness, caplog
) -> None:
    """Stored together and answered through the shared reads: one greeting per new customer,
    one hand-over per ticket even when two messages of the batch join it, a mentioned email
    of another customer suggested, every reply recorded with its outbox row."""
    async with harness.sessions() as session, session.begin():
        known = await ingest(
            session,
            InboundMessage(
                channel=Channel.EMAIL,
                external_id="<a1@example.ru>",
                identity_kind=IdentityKind.EMAIL,
                identity_value="olga@example.ru",
                occurred_at=utcnow(),
                text="Здравствуйте",
            ),
        )
    other = CHAT + 1
    harness.api.push_message(CHAT, "Хочу вернуть деньги")
    harness.api.push_message(other, "Мой email olga@example.ru")
    harness.api.push_message(CHAT, "Верните деньги, пожалуйста")
    harness.api.push_message(CHAT, "Хочу вернуть деньги, товар не подошёл")
    with caplog.at_level("INFO", logger="callcenter.channels.telegram.processor"):
        assert await harness.poll() == 4
    assert "one by one" not in caplog.text
    while await harness.send():
        pass
    sent = [(m.chat_id, m.text.split(",")[0].split("!")[0]) for m in harness.api.sent if m.text]
    assert [text for chat, text in sent if chat == CHAT] == [
        "Здравствуйте",
        "Вы писали о возврате денег — передаю оператору.",
    ]
    assert [text for chat, text in sent if chat == other] == [
        "Здравствуйте",
        "Передаю ваше сообщение оператору.",
    ]
    async with harness.sessions() as session:
        [suggestion] = await session.scalars(select(MergeSuggestion))
        assert known.customer.id in {suggestion.customer_id, suggestion.other_customer_id}
        outbox = list(await session.scalars(select(Outbox).order_by(Outbox.id)))
        replies = list(
            await session.scalars(
                select(Interaction)
                .where(Interaction.direction == Direction.OUTBOUND)
                .order_by(Interaction.id)
            )
        )
    assert [row.payload["interaction_id"] for row in outbox] == [r.id for r in replies]
    assert [row.payload["text"] for row in outbox] == [r.text for r in replies]

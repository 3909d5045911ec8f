"""Media, edits, groups and hostile input."""

from __future__ import annotations

import struct
import zlib

import pytest
from sqlalchemy import func, select

from callcenter.channels.telegram.files import AttachmentUnavailable
from callcenter.models import Customer, Interaction, Outbox
from tests.telegram.conftest import Harness

CHAT = 5550005


def png(width: int = 64, height: int = 48) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * width * 3 for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


async def test_photo_document_and_voice_are_stored_for_agents(harness: Harness) -> None:
    picture = png()
    harness.api.push_message(CHAT, "Вот фото брака, заказ №3003", photo=picture)
    harness.api.push_message(CHAT, document=b"%PDF-1.4 check", file_name="чек.pdf")
    harness.api.push_message(CHAT, voice=b"OggS voice bytes", duration=4)
    await harness.exchange()
    photo, document, voice = await harness.inbound()
    assert photo.text == "Вот фото брака, заказ №3003" and photo.order_numbers == ["3003"]
    assert [a["kind"] for a in (*photo.attachments, *document.attachments, *voice.attachments)] == [
        "photo",
        "document",
        "voice",
    ]
    assert document.attachments[0]["file_name"] == "чек.pdf"
    assert voice.attachments[0]["duration"] == 4
    files = harness.channel.files
    assert (await files.open(photo.attachments[0])).read_bytes() == picture
    assert (await files.open(document.attachments[0])).read_bytes() == b"%PDF-1.4 check"
    assert (await files.open(voice.attachments[0])).read_bytes() == b"OggS voice bytes"
    downloads = len(harness.api.downloads)
    await files.open(photo.attachments[0])
    assert len(harness.api.downloads) == downloads  # served from disk


@pytest.mark.parametrize("file_limit", [1000])
async def test_a_file_over_the_limit_is_recorded_but_not_stored(harness: Harness) -> None:
    harness.api.push_message(CHAT, "Видео распаковки", document=b"x" * 5000, file_name="big.bin")
    await harness.exchange()
    [message] = await harness.inbound()
    [attachment] = message.attachments
    assert attachment["too_large"] is True and attachment["size"] == 5000
    with pytest.raises(AttachmentUnavailable, match="larger than 1000 bytes"):
        await harness.channel.files.open(attachment)
    assert harness.api.downloads == []


async def test_an_edit_is_recorded_next_to_the_original(harness: Harness) -> None:
    update = harness.api.push_message(CHAT, "Заказ №4004 не пришёл")
    assert update is not None
    await harness.exchange()
    sent = len(harness.api.sent)
    harness.api.push_edited_message(CHAT, update["message"]["message_id"], "Заказ №4005 не пришёл")
    await harness.exchange()
    original, edit = await harness.inbound()
    assert original.text == "Заказ №4004 не пришёл"
    assert edit.text == "Заказ №4005 не пришёл"
    assert edit.ticket_id == original.ticket_id
    assert edit.attachments == [
        {"kind": "edit", "of": original.external_id, "interaction_id": original.id}
    ]
    assert len(harness.api.sent) == sent  # the bot does not answer edits


async def test_groups_are_ignored_politely(harness: Harness) -> None:
    harness.api.push_message(-100123, "Всем привет, где мой заказ №5005?", chat_type="supergroup")
    harness.api.push_message(-100123, "/start", chat_type="supergroup")
    await harness.exchange()
    assert await harness.inbound() == []
    [polite] = harness.api.sent
    assert polite.chat_id == -100123
    assert polite.text == "Я отвечаю только в личных сообщениях: напишите мне напрямую."
    async with harness.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 0


HOSTILE_NAME = "<b>Иван</b>\u202e'; DROP TABLE customers;--{name}%s"
HOSTILE_TEXT = (
    "<script>alert(1)</script> *жирный* _курсив_ [ссылка](http://evil.example) "
    "\x00\x07 ${jndi:ldap://x} {greeting} \u202eтекст наоборот 🎉 заказ №6006"
)


async def test_hostile_name_and_text_are_stored_and_echoed_as_plain_text(
    harness: Harness,
) -> None:
    harness.api.push_message(
        CHAT, HOSTILE_TEXT, from_user={"first_name": HOSTILE_NAME, "last_name": "\u0000"}
    )
    await harness.exchange()
    [stored] = await harness.inbound()
    assert stored.text == HOSTILE_TEXT.replace("\x00", "").replace("\x07", "")
    assert stored.order_numbers == ["6006"]
    greeting = harness.api.sent[0]
    assert greeting.text.startswith(f"Здравствуйте, {HOSTILE_NAME}!")
    assert greeting.parse_mode is None and not greeting.entities
    async with harness.sessions() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None and customer.display_name == HOSTILE_NAME
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 3
        assert await session.scalar(select(func.count()).select_from(Outbox)) == 2

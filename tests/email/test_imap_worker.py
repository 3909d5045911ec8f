"""The IMAP worker against a real Dovecot: mail placed with IMAP APPEND, read into the database."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import os
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.defaults import install_default_rules
from callcenter.automation.engine import Engine
from callcenter.bus import Bus
from callcenter.channels.email.imap import ImapClient
from callcenter.channels.email.models import ImapCheckpoint
from callcenter.channels.email.worker import readers, run_email_worker
from callcenter.config import Settings
from callcenter.domain.customers import attach_identity, create_customer
from callcenter.models import Customer, Identity, IdentityKind, Interaction
from tests.automation.helpers import config as automation_config
from tests.email import support
from tests.email.support import FIXTURES, T0, mail
from tests.services.dovecot import Dovecot, running_dovecot


@pytest.fixture(scope="module")
async def imap_server() -> AsyncIterator[Dovecot]:
    async with running_dovecot() as server:
        yield server


@pytest.fixture
def dovecot(imap_server: Dovecot) -> Dovecot:
    """The module's Dovecot with a fresh, empty account for this test."""
    return dataclasses.replace(imap_server, user=f"shop-{uuid.uuid4().hex[:10]}@example.test")


def unseen(server: Dovecot, mailbox: str = "INBOX") -> list[bytes]:
    client = server.connect()
    try:
        client.select(mailbox)
        status, data = client.search(None, "UNSEEN")
        assert status == "OK"
        return data[0].split()
    finally:
        client.logout()


async def read_once(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus | None = None,
    *,
    batch: int = 50,
) -> int:
    """One pass over INBOX, as the worker makes after connecting; returns how many it fetched."""
    reader = readers(settings, sessions, bus, batch=batch)[0]
    client = ImapClient(reader.account)
    await client.connect()
    try:
        return await reader.sync(client, await client.select("INBOX"), asyncio.Event())
    finally:
        await client.close()


async def checkpoint(sessions: async_sessionmaker[AsyncSession]) -> ImapCheckpoint:
    async with sessions() as session:
        return await session.scalar(select(ImapCheckpoint))


def big_attachment_mail(size: int) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Олег <oleg@example.ru>"
    message["To"] = support.SHOP
    message["Subject"] = "Видео с браком, заказ 31337"
    message["Message-ID"] = "<big-1@example.ru>"
    message.set_content("Пришлось снять видео, смотрите вложение.")
    message.add_attachment(
        os.urandom(size), maintype="application", subtype="octet-stream", filename="video.mp4"
    )
    return message.as_bytes()


async def test_charsets_broken_mime_and_an_oversized_attachment_are_stored(
    sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot, tmp_path: Path
) -> None:
    names = [
        "koi8r_subject_body.eml",
        "cp1251_undeclared.eml",
        "ascii_no_charset.eml",
        "truncated_multipart.eml",
    ]
    for name in names:
        dovecot.append((FIXTURES / name).read_bytes())
    big = big_attachment_mail(20 * 2**20)
    dovecot.append(big)
    settings = support.settings(tmp_path, dovecot=dovecot)

    assert await read_once(settings, sessions) == 5

    stored = {i.external_id: i for i in await support.emails(sessions)}
    assert len(stored) == 5
    koi8 = stored["20240514091500.GA1234@example.ru"]
    assert "Хочу вернуть утюг из заказа 777" in koi8.text
    assert "Сергей" not in koi8.text  # the signature is trimmed from the timeline...
    original = koi8.attachments[0]
    assert original["kind"] == "original" and original["stored"]
    kept = (tmp_path / "attachments" / original["path"]).read_bytes()
    assert kept == (FIXTURES / "koi8r_subject_body.eml").read_bytes()  # ...and kept here
    assert "Просим выставить счёт" in stored["000501d7a1b2$3c4d5e60$0a00a8c0@buh"].text
    assert "when order 4711 ships" in stored["CAJohn4711@mail.example.com"].text
    truncated = stored["truncated-1@example.ru"]
    assert "Документы по заказу 555" in truncated.text
    assert [a["filename"] for a in truncated.attachments[1:]] == ["scan.bin"]

    huge = stored["big-1@example.ru"]
    assert "снять видео" in huge.text
    video = next(a for a in huge.attachments if a["filename"] == "video.mp4")
    assert video["too_large"] and not video["stored"] and video["path"] is None
    assert video["size"] == 20 * 2**20
    assert not huge.attachments[0]["stored"]  # the 27 MB original stays in the mailbox
    [note] = await support.notes(sessions)
    assert note.ticket_id == huge.ticket_id and "video.mp4" in note.text and "20.0 MB" in note.text

    async with sessions() as session:
        customers = {c.display_name: c for c in await session.scalars(select(Customer))}
    assert customers["Сергей Иванов"].language == "ru"
    assert customers["John Smith"].language == "en"
    subjects = {t.subject for t in await support.tickets(sessions)}
    assert "Возврат товара по заказу 777" in subjects
    assert "Счёт на оплату" in subjects

    assert unseen(dovecot) == []
    assert (await checkpoint(sessions)).last_uid == 5


async def test_a_thread_of_three_mails_stays_in_one_ticket(
    sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot, tmp_path: Path
) -> None:
    from callcenter.channels.email.smtp import SmtpSender
    from callcenter.domain.tickets import record_reply
    from callcenter.models import Channel
    from callcenter.outbox import OutboxWorker, enqueue
    from tests.services.smtp import running_smtp

    ivan = "Иван Петров <ivan@example.ru>"
    async with running_smtp() as smtp:
        settings = support.settings(tmp_path, dovecot=dovecot, smtp=smtp)
        dovecot.append(
            mail(ivan, "Где мой заказ 12345?", "Заказ 12345 не пришёл.", message_id="m1@ex.ru")
        )
        await read_once(settings, sessions)
        [first] = await support.emails(sessions)
        ticket_id = first.ticket_id

        async with sessions() as session, session.begin():
            reply, _ = await record_reply(
                session, ticket_id, channel=Channel.EMAIL, text="Заказ уже в пути.", at=T0
            )
            enqueue(
                session,
                channel="email",
                recipient="ivan@example.ru",
                payload={"text": reply.text, "ticket_id": ticket_id, "interaction_id": reply.id},
                ticket_id=ticket_id,
            )
        assert await OutboxWorker(sessions, [SmtpSender(settings, sessions)]).run_once() == 1
        [sent] = await smtp.wait_for(1)
    ours = email.message_from_bytes(sent.content, policy=SMTP)
    our_id = ours["Message-ID"].strip("<>")
    assert ours["Subject"] == f"Re: Где мой заказ 12345? [#{ticket_id}]"
    assert ours["In-Reply-To"] == "<m1@ex.ru>"

    # The answer, then another request (now the newest open ticket), then a mail with only
    # the subject tag: headers and tag must win over "the newest open ticket".
    dovecot.append(
        mail(
            ivan,
            "Re: Где мой заказ?",
            "Спасибо! А курьер позвонит?\n\n> Заказ уже в пути.",
            message_id="m2@ex.ru",
            in_reply_to=our_id,
            references=("m1@ex.ru", our_id),
            date=T0.replace(hour=13),
        )
    )
    dovecot.append(
        mail(
            ivan,
            "Возврат",
            "Хочу вернуть заказ 55555.",
            message_id="m-other@ex.ru",
            date=T0.replace(hour=14),
        )
    )
    dovecot.append(
        mail(
            ivan,
            f"Ещё вопрос [#{ticket_id}]",
            "И ещё: можно ли оплатить картой?",
            message_id="m3@ex.ru",
            date=T0.replace(hour=15),
        )
    )
    dovecot.append(
        mail(
            "Чужой <stranger@example.com>",
            f"Хочу в чужой тикет [#{ticket_id}]",
            "Привет",
            message_id="m4@ex.com",
            date=T0.replace(hour=16),
        )
    )
    await read_once(settings, sessions)

    by_id = {i.external_id: i for i in await support.emails(sessions)}
    assert by_id[our_id].id == reply.id  # the outbox recorded our Message-ID on the reply
    thread = [by_id[m].ticket_id for m in ("m1@ex.ru", our_id, "m2@ex.ru", "m3@ex.ru")]
    assert thread == [ticket_id] * 4
    assert by_id["m2@ex.ru"].text == "Спасибо! А курьер позвонит?"  # the quote is trimmed
    assert by_id["m-other@ex.ru"].ticket_id != ticket_id
    assert by_id["m4@ex.com"].ticket_id not in (ticket_id, by_id["m-other@ex.ru"].ticket_id)


async def test_auto_replies_lists_and_bounces_are_recorded_but_never_acknowledged(
    sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot, tmp_path: Path
) -> None:
    async with sessions() as session, session.begin():
        await install_default_rules(session)
        dead = await create_customer(session, "Никто")
        await attach_identity(session, dead, IdentityKind.EMAIL, "nobody@example.org")
    bus = Bus()
    Engine(sessions, automation_config()).subscribe(bus)
    dovecot.append(
        mail("Анна <anna@example.ru>", "Заказ 777", "Где заказ 777?", message_id="a1@ex.ru")
    )
    for name in ("auto_replied.eml", "out_of_office.eml", "mailing_list.eml", "dsn_bounce.eml"):
        dovecot.append((FIXTURES / name).read_bytes())

    await read_once(support.settings(tmp_path, dovecot=dovecot), sessions, bus)
    await bus.drain()

    stored = await support.emails(sessions)
    assert len(stored) == 5
    [ticket] = await support.tickets(sessions)
    assert [i.ticket_id for i in stored if i.ticket_id is not None] == [ticket.id]
    [ack] = await support.outbox(sessions)  # only the person who wrote gets an answer
    assert ack.recipient == "anna@example.ru" and ack.payload["auto"] is True
    async with sessions() as session:
        identity = await session.scalar(
            select(Identity).where(Identity.value == "nobody@example.org")
        )
        bounce = await session.scalar(select(Interaction).where(Interaction.customer_id == dead.id))
    assert identity.failing
    assert bounce is not None and bounce.ticket_id is None  # on the dead address's timeline
    assert unseen(dovecot) == []


async def test_a_restart_neither_skips_nor_reimports(
    sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot, tmp_path: Path
) -> None:
    settings = support.settings(tmp_path, dovecot=dovecot)
    for n in range(3):
        dovecot.append(mail(f"c{n}@example.ru", f"Вопрос {n}", "Текст", message_id=f"r{n}@ex.ru"))
    assert await read_once(settings, sessions) == 3
    for n in range(3, 5):
        dovecot.append(mail(f"c{n}@example.ru", f"Вопрос {n}", "Текст", message_id=f"r{n}@ex.ru"))

    assert await read_once(settings, sessions) == 2  # a new reader: only the new mail
    assert await read_once(settings, sessions) == 0
    assert len(await support.emails(sessions)) == 5

    async with sessions() as session, session.begin():  # the server renumbered the mailbox
        (await session.scalar(select(ImapCheckpoint))).uidvalidity = 1
    assert await read_once(settings, sessions) == 5
    assert len(await support.emails(sessions)) == 5
    assert (await checkpoint(sessions)).last_uid == 5


class CuttingProxy:
    """A loopback TCP proxy that drops its first connection after ``cut_after`` bytes from
    the server: the IMAP connection dies in the middle of a FETCH."""

    def __init__(self, target: Dovecot, cut_after: int) -> None:
        self.target = target
        self.cut_after = cut_after
        self.connections = 0
        self.cut = False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        limit = self.cut_after if self.connections == 1 else None
        server_r, server_w = await asyncio.open_connection(self.target.host, self.target.port)

        async def pipe(reader, writer, limit: int | None) -> None:  # type: ignore[no-untyped-def]
            sent = 0
            try:
                while data := await reader.read(16384):
                    if limit is not None and sent + len(data) > limit:
                        writer.write(data[: limit - sent])
                        self.cut = True
                        break
                    sent += len(data)
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                for w in (client_w, server_w):
                    w.close()

        await asyncio.gather(pipe(server_r, client_w, limit), pipe(client_r, server_w, None))


async def test_a_connection_dropped_mid_fetch_loses_and_doubles_nothing(
    sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot, tmp_path: Path
) -> None:
    filler = "Строка описания проблемы с заказом.\n" * 1500  # ~80 KB per mail
    for n in range(6):
        dovecot.append(mail(f"d{n}@example.ru", f"Письмо {n}", filler, message_id=f"d{n}@ex.ru"))
    proxy = CuttingProxy(dovecot, cut_after=250_000)  # inside the second batch of two
    port = await proxy.start()
    settings = support.settings(tmp_path, dovecot=dovecot, imap_port=port)
    [reader] = readers(settings, sessions, None, batch=2, poll_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(reader.run(stop))
    try:
        for _ in range(300):
            if len(await support.emails(sessions)) == 6 and not unseen(dovecot):
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await proxy.stop()

    assert proxy.cut and reader.connections >= 2
    stored = await support.emails(sessions)
    assert sorted(i.external_id for i in stored) == [f"d{n}@ex.ru" for n in range(6)]
    assert unseen(dovecot) == []
    assert (await checkpoint(sessions)).last_uid == 6


async def test_idle_brings_new_mail_in_at_once_from_several_mailboxes(
    sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot, tmp_path: Path
) -> None:
    dovecot.append(mail("early@example.ru", "Раньше", "Было до запуска", message_id="e1@ex.ru"))
    client = dovecot.connect()
    client.create("Orders")
    client.logout()
    settings = support.settings(tmp_path, dovecot=dovecot, imap_mailboxes="INBOX, Orders")
    stop = asyncio.Event()
    worker = asyncio.create_task(run_email_worker(settings, sessions, Bus(), stop, send=False))

    async def stored(count: int) -> list[Interaction]:
        for _ in range(100):
            found = await support.emails(sessions)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{len(found)} of {count} mails stored")

    try:
        await stored(1)
        await asyncio.sleep(0.5)  # both readers idle now; a poll would come only after 60 s
        dovecot.append(
            mail("new@example.ru", "Новое", "Пришло во время IDLE", message_id="n1@ex.ru")
        )
        dovecot.append(
            mail("shop@example.ru", "Заказ", "Заказ 4242 оформлен", message_id="o1@ex.ru"),
            mailbox="Orders",
        )
        found = await stored(3)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
    assert {i.external_id for i in found} == {"e1@ex.ru", "n1@ex.ru", "o1@ex.ru"}
    assert unseen(dovecot) == [] and unseen(dovecot, "Orders") == []
    async with sessions() as session:
        marks = {c.mailbox: c.last_uid for c in await session.scalars(select(ImapCheckpoint))}
    assert marks == {"INBOX": 2, "Orders": 1}

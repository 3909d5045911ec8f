"""Email intake throughput: Dovecot -> parse, classify, thread -> PostgreSQL, in messages/s.

Starts a throw-away Dovecot on loopback and a fresh PostgreSQL database, places N mails in the
mailbox with IMAP APPEND (a mix of the real-world fixtures and generated customer mail in
Russian and English, a third of it replies that must be threaded), then times:
  - fetch:  a plain UID FETCH of every message in batches, as the worker does, storing nothing
  - ingest: the worker's pass over the mailbox: fetch, parse, classify, thread, store, commit,
            mark \\Seen (the classifier's dictionary is built before the clock starts, as a
            running worker has it)
Goal from the email issue: 200 messages/s on 2 cores. The load average is printed with the
figures: on a busy machine the wall clock mostly measures waiting for a CPU.

    .venv/bin/python bench/email_ingest.py [--messages 2000] [--batch 50] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from callcenter.bus import Bus
from callcenter.channels.email.imap import ImapAccount, ImapClient
from callcenter.channels.email.worker import readers
from callcenter.classify import classify
from callcenter.config import Settings
from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import Interaction, Ticket
from tests.dbs import postgres_database
from tests.services.dovecot import running_dovecot

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "email" / "fixtures"
SHOP = "Магазин <support@shop.example>"
NAMES = ["Иван Петров", "Анна Смирнова", "Сергей Кузнецов", "Ольга Попова", "John Smith"]
QUESTIONS = [
    "Здравствуйте! Где мой заказ {order}? Обещали доставить вчера.",
    "Хочу вернуть товар из заказа {order}, он не подошёл по размеру.",
    "Подскажите, можно ли оплатить заказ {order} картой при получении?",
    "Пришёл не тот цвет, заказ {order}. Что делать?",
    "Hello, could you tell me when order {order} ships?",
]
REPLIES = [
    "Спасибо за ответ! А курьер позвонит заранее?",
    "Понятно, жду. Ещё вопрос: можно поменять адрес?",
    "Thanks, that helps.",
]


def generated_mails(count: int, seed: int = 7) -> list[bytes]:
    """Customer mail; about a third replies to an earlier mail of the same customer."""
    rng = random.Random(seed)
    fixtures = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]
    start = datetime(2025, 11, 1, 9, 0, tzinfo=UTC)
    sent_by: dict[str, list[str]] = {}
    mails: list[bytes] = []
    for n in range(count):
        if n % 20 == 0:
            mails.append(
                fixtures[(n // 20) % len(fixtures)].replace(
                    b"Message-ID: <", f"Message-ID: <b{n}-".encode(), 1
                )
            )
            continue
        customer = rng.randrange(count // 4 + 1)
        address = f"customer{customer}@example.ru"
        message = EmailMessage(policy=SMTP)
        message["From"] = f"{rng.choice(NAMES)} <{address}>"
        message["To"] = SHOP
        message["Date"] = format_datetime(start + timedelta(minutes=n))
        message["Message-ID"] = f"<bench-{n}@example.ru>"
        earlier = sent_by.get(address)
        if earlier and rng.random() < 0.5:
            message["Subject"] = "Re: Ваш заказ"
            message["In-Reply-To"] = f"<{earlier[-1]}>"
            message["References"] = " ".join(f"<{m}>" for m in earlier[-3:])
            body = rng.choice(REPLIES) + "\n\n> " + rng.choice(QUESTIONS).format(order=12345)
        else:
            order = rng.randrange(10000, 99999)
            message["Subject"] = f"Заказ {order}"
            body = rng.choice(QUESTIONS).format(order=order) + "\n\n--\nС уважением, покупатель"
        message.set_content(body)
        sent_by.setdefault(address, []).append(f"bench-{n}@example.ru")
        mails.append(message.as_bytes())
    return mails


@asynccontextmanager
async def database(sqlite: bool, directory: Path) -> AsyncIterator[str]:
    if sqlite:
        yield f"sqlite+aiosqlite:///{directory / 'bench.db'}"
        return
    async with postgres_database("cc_bench") as url:
        yield url


def append_all(server, mails: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    client = server.connect()
    try:
        for raw in mails:
            status, detail = client.append("INBOX", None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND failed: {detail!r}")
    finally:
        client.logout()


async def plain_fetch(settings: Settings, batch: int) -> tuple[int, float]:
    client = ImapClient(ImapAccount.from_settings(settings))
    await client.connect()
    try:
        await client.select("INBOX")
        started = time.perf_counter()
        uids = await client.uids_after(0)
        fetched = 0
        for i in range(0, len(uids), batch):
            fetched += len(await client.fetch(uids[i : i + batch]))
        return fetched, time.perf_counter() - started
    finally:
        await client.close()


async def ingest(settings: Settings, url: str, batch: int) -> tuple[int, float, float]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    [reader] = readers(settings, sessions, Bus(), batch=batch)
    client = ImapClient(reader.account)
    await client.connect()
    try:
        validity = await client.select("INBOX")
        classify("")  # builds the dictionary, once per process
        started, started_cpu = time.perf_counter(), time.process_time()
        count = await reader.sync(client, validity, asyncio.Event())
        return count, time.perf_counter() - started, time.process_time() - started_cpu
    finally:
        await client.close()
        await engine.dispose()


async def summary(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            interactions = await session.scalar(select(func.count()).select_from(Interaction))
            tickets = await session.scalar(select(func.count()).select_from(Ticket))
        return interactions or 0, tickets or 0
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    args = parser.parse_args()
    mails = generated_mails(args.messages)
    size = sum(map(len, mails)) / len(mails)
    with tempfile.TemporaryDirectory() as tmp:
        async with running_dovecot() as dovecot, database(args.sqlite, Path(tmp)) as url:
            server = dataclasses.replace(dovecot, user="bench@example.test")
            await asyncio.to_thread(append_all, server, mails)
            await upgrade_async(url)
            settings = Settings(
                data_dir=Path(tmp) / "data",
                smtp_from=SHOP,
                imap_host=server.host,
                imap_port=server.port,
                imap_user=server.user,
                imap_password=server.password,
                imap_security="none",
            )
            fetched, fetch_seconds = await plain_fetch(settings, args.batch)
            count, seconds, cpu = await ingest(settings, url, args.batch)
            interactions, tickets = await summary(url)
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"email ingest: {len(mails)} mails, mean {size:.0f} bytes, batches of {args.batch}, "
        f"Dovecot -> {backend}"
    )
    print(
        f"  plain UID FETCH:          {fetched} msgs in {fetch_seconds:6.2f} s = "
        f"{fetched / fetch_seconds:8,.0f} msg/s"
    )
    print(
        f"  fetch+parse+classify+thread+store+\\Seen: {count} msgs in {seconds:6.2f} s = "
        f"{count / seconds:8,.0f} msg/s  (this process's CPU: {count / cpu:,.0f} msg/s)"
    )
    print(
        f"  goal 200 msg/s on 2 cores: {'met' if count / seconds >= 200 else 'NOT met'}; "
        f"stored {interactions} interactions in {tickets} tickets"
    )
    print("  load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    asyncio.run(main())

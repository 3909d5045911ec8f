"""Telegram intake throughput: updates/s from the Bot API server into PostgreSQL.

Both parts run on a fresh, migrated PostgreSQL database (CALLCENTER_TEST_PG, as for the tests):
  - worker:   the real path: getUpdates from the local fake Bot API server over HTTP (in a
              process of its own, as Telegram is not in ours), aiogram parsing, classification,
              customer resolution, ticket filing, the bot's replies queued in the outbox, one
              transaction per batch of 100. Timed from the end of the first batch (start-up:
              the classifier's dictionary, pydantic's schemas) to the last.
  - baseline: plain INSERTs of the same rows (customers, identities, tickets, interactions,
              update ids), one statement a row, 100 messages a transaction, no lookups, no
              classification
Sending the queued replies is not part of either figure. Each round prints both with the load
average at the time. Goal from the issue: 1,000 updates/s on 2 cores.

    .venv/bin/python bench/telegram_ingest.py [--updates 5000] [--customers 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from _common import load
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.bus import Bus
from callcenter.channels.telegram.models import TelegramUpdate
from callcenter.channels.telegram.worker import TelegramChannel
from callcenter.config import Settings
from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import (
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Ticket,
)
from tests.dbs import postgres_database
from tests.fakes.botapi import BotApiServer

TEXTS = [
    "Здравствуйте! Где мой заказ №{order}? Жду уже неделю",
    "Хочу вернуть деньги за заказ {order}, товар не подошёл",
    "Можно обменять куртку на размер побольше?",
    "Спасибо, всё получил",
    "Оплата не проходит, карта списала дважды",
    "Пришлите чек по заказу №{order}",
    "Добрый вечер, мой email olga{user}@example.ru, напишите туда",
    "Когда привезут? Заказ #{order}",
]


def messages(count: int, customers: int) -> list[tuple[int, str]]:
    rng = random.Random(7)
    return [
        (
            9_000_000 + rng.randrange(customers),
            rng.choice(TEXTS).format(order=10_000 + rng.randrange(50_000), user=i),
        )
        for i in range(count)
    ]


def serve(conn: Connection, batch: list[tuple[int, str]]) -> None:
    """The fake Bot API server with ``batch`` queued, until the parent says stop."""

    async def run() -> None:
        async with BotApiServer() as api:
            for chat_id, text in batch:
                api.push_message(chat_id, text)
            conn.send((api.base_url, api.token))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(run())


async def run_worker(url: str, batch: list[tuple[int, str]]) -> tuple[int, float, float]:
    """Updates stored after the first batch, the seconds they took, and the CPU seconds the
    worker's process spent on them (without the server's or PostgreSQL's)."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(child, batch))
    server.start()
    child.close()  # so that a server dying before it answers is an EOFError, not a hang
    try:
        base_url, token = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        engine = create_engine(url, pool_size=5)
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                data_dir=Path(data_dir),
                database_url=url,
                telegram_token=token,
                telegram_api_base=base_url,
            )
            channel = TelegramChannel(settings, session_factory(engine), Bus(), poll_timeout=0)
            first = await channel.poller.run_once()
            started, cpu = time.perf_counter(), time.process_time()
            while await channel.poller.run_once():
                pass
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            await channel.close()
        await engine.dispose()
    finally:
        parent.send("stop")
        server.join()
    return len(batch) - first, elapsed, cpu


async def run_baseline(url: str, batch: list[tuple[int, str]]) -> float:
    engine = create_engine(url, pool_size=5)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    customers: dict[int, int] = {}
    for first in range(0, len(batch), 100):
        chunk = batch[first : first + 100]
        async with sessions() as session, session.begin():
            for offset, (chat_id, text) in enumerate(chunk):
                if chat_id not in customers:
                    customers[chat_id] = await session.scalar(
                        insert(Customer)
                        .values(display_name="Иван Петров", created_at=now, updated_at=now)
                        .returning(Customer.id)
                    )
                    await session.execute(
                        insert(Identity).values(
                            customer_id=customers[chat_id],
                            kind=IdentityKind.TELEGRAM,
                            value=str(chat_id),
                            created_at=now,
                        )
                    )
                ticket_id = await session.scalar(
                    insert(Ticket)
                    .values(
                        customer_id=customers[chat_id],
                        channel=Channel.TELEGRAM,
                        subject=text[:200],
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(Ticket.id)
                )
                await session.execute(
                    insert(Interaction).values(
                        customer_id=customers[chat_id],
                        ticket_id=ticket_id,
                        channel=Channel.TELEGRAM,
                        direction=Direction.INBOUND,
                        external_id=f"{chat_id}:{first + offset}",
                        text=text,
                        occurred_at=now,
                        created_at=now,
                    )
                )
                await session.execute(
                    insert(TelegramUpdate).values(update_id=first + offset, received_at=now)
                )
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batch = messages(args.updates, args.customers)
    print(f"telegram ingest into PostgreSQL: {len(batch)} updates from {args.customers} customers")
    for round_ in range(1, args.rounds + 1):
        async with postgres_database("cc_bench") as url:
            await upgrade_async(url)
            count, worker, cpu = await run_worker(url, batch)
        print(
            f"  round {round_} worker   {count / worker:8,.0f} updates/s"
            f"  ({count} in {worker:.2f} s, {cpu / count * 1e3:.2f} ms CPU each in the worker;"
            f" goal 1,000/s)  {load()}"
        )
        async with postgres_database("cc_bench") as url:
            await upgrade_async(url)
            baseline = await run_baseline(url, batch)
        print(
            f"  round {round_} baseline {len(batch) / baseline:8,.0f} rows/s"
            f"     ({len(batch)} in {baseline:.2f} s; plain INSERTs)  {load()}"
        )


if __name__ == "__main__":
    asyncio.run(main())

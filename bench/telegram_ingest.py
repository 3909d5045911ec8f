"""Telegram intake throughput: updates/s from the Bot API server into PostgreSQL.

Both parts run on a fresh, migrated PostgreSQL database (CALLCENTER_TEST_PG, as for the tests):
  - worker:   the real path: getUpdates from the local fake Bot API server over HTTP, aiogram
              parsing and routing, classification, customer resolution, ticket filing,
              the bot's replies queued in the outbox, one transaction per batch of 100
  - baseline: plain INSERTs of the same rows (customers, identities, tickets, interactions,
              update ids), 100 messages a transaction, no lookups, no classification
Sending the queued replies is not part of either figure. Goal from the issue: 1,000 updates/s
on 2 cores.

    .venv/bin/python bench/telegram_ingest.py [--updates 3000] [--customers 300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

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


async def run_worker(url: str, batch: list[tuple[int, str]]) -> float:
    async with BotApiServer() as api:
        for chat_id, text in batch:
            api.push_message(chat_id, text)
        engine = create_engine(url, pool_size=5)
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                data_dir=Path(data_dir),
                database_url=url,
                telegram_token=api.token,
                telegram_api_base=api.base_url,
            )
            channel = TelegramChannel(settings, session_factory(engine), Bus(), poll_timeout=0)
            started = time.perf_counter()
            while await channel.poller.run_once():
                pass
            elapsed = time.perf_counter() - started
            await channel.close()
        await engine.dispose()
    return elapsed


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
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=300)
    args = parser.parse_args()
    batch = messages(args.updates, args.customers)
    async with postgres_database("cc_bench") as url:
        await upgrade_async(url)
        worker = await run_worker(url, batch)
    async with postgres_database("cc_bench") as url:
        await upgrade_async(url)
        baseline = await run_baseline(url, batch)
    count = len(batch)
    print(f"telegram ingest into PostgreSQL: {count} updates from {args.customers} customers")
    print(f"  worker   {count / worker:8,.0f} updates/s  ({worker:.2f} s; goal 1,000/s)")
    print(f"  baseline {count / baseline:8,.0f} rows/s     ({baseline:.2f} s; plain INSERTs)")


if __name__ == "__main__":
    asyncio.run(main())

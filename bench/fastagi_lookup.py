"""FastAGI caller lookup latency on a large database (read-only).

Measures, over many random caller numbers (90 % numbers of real customers, in varied
spellings, 10 % unknown numbers):
  - sql:     the lookup statement alone, prepared, on one held asyncpg connection (the
             database's share)
  - lookup:  ``CallerLookups.lookup`` as the AGI server runs it (an asyncpg pool of its own,
             the statement prepared on each connection as it opens)
  - fastagi: the whole AGI session as Asterisk sees it: connect to the FastAGI server, send
             the ``agi_*`` headers (with a dialled number, ``agi_arg_1``), answer each
             command (one ``EXEC MSet``), until the server hangs up; the client runs in
             another process, so it does not share the server's loop. This is the figure the
             goal names.
  - no-db:   the same sessions answered with fixed variables and no database: the floor the
             protocol and the machine's scheduler set (on a busy machine, most of the tail)
Each phase looks up numbers of its own, so none finds its pages cached by an earlier phase.
Goal from the telephony issue: FastAGI lookup p99 under 5 ms with 1,000,000 customers in
PostgreSQL. Nothing is written to the database. The load average is printed with the
figures: on a busy machine the tail is mostly waiting for a CPU.

    .venv/bin/python bench/fastagi_lookup.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1/cc_seed [--samples 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import asyncpg
from sqlalchemy import func, make_url, select, text

from callcenter.channels.telephony.fastagi import (
    AgiRequest,
    CallerLookups,
    FastAgiServer,
    lookup_route,
)
from callcenter.channels.telephony.lookup import LOOKUP_SQL_POSTGRESQL, UNKNOWN
from callcenter.channels.telephony.routing import QueueNumbers
from callcenter.db import create_engine, session_factory
from callcenter.domain.identity import normalize_phone
from callcenter.models import Customer, Identity, IdentityKind


def spellings(e164: str) -> list[str]:
    """How a Russian number may arrive from a trunk: +7..., 7..., 8..., ten digits."""
    national = e164[2:] if e164.startswith("+7") else e164.lstrip("+")
    return [e164, e164.lstrip("+"), "8" + national, national]


async def caller_numbers(sessions, samples: int) -> tuple[list[str], int]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        customers = await session.scalar(select(func.count()).select_from(Customer))
        # TABLESAMPLE reads a random 1 % of the pages instead of sorting the whole table.
        sample = text(
            "SELECT value FROM identities TABLESAMPLE SYSTEM (1) WHERE kind = :kind LIMIT :n"
        )
        if session.bind.dialect.name == "postgresql":
            rows = await session.scalars(sample, {"kind": IdentityKind.PHONE.value, "n": samples})
        else:
            rows = await session.scalars(
                select(Identity.value)
                .where(Identity.kind == IdentityKind.PHONE)
                .order_by(func.random())
                .limit(samples)
            )
        known = list(rows)
    rng = random.Random(7)
    numbers = [rng.choice(spellings(n)) for n in known]
    numbers += [f"+7903{rng.randrange(10**7):07d}" for _ in range(max(1, samples // 10))]
    rng.shuffle(numbers)
    return numbers[:samples], customers or 0


def figures(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p = statistics.quantiles(ms, n=100, method="inclusive")
    return (
        f"{name:8} n={len(ms):6}  p50={p[49]:.2f} ms  p90={p[89]:.2f} ms  "
        f"p99={p[98]:.2f} ms  max={ms[-1]:.2f} ms"
    )


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


DIALLED = "74957654321"
"""The number the bench's callers dial (agi_arg_1)."""


async def fixed_variables(request: AgiRequest) -> None:
    """The same session without a database: what the protocol and the scheduler cost."""
    await request.set_variables({"CC_CUSTOMER_ID": UNKNOWN, "CC_QUEUE_PRIO": "0"})


async def agi_session(port: int, number: str, route: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"agi_network: yes\nagi_network_script: {route}\nagi_channel: PJSIP/trunk-00000001\n"
            f"agi_callerid: {number}\nagi_calleridname: Иван Петров\n"
            f"agi_arg_1: {DIALLED}\n\n"
        ).encode()
    )
    commands = 0
    while await reader.readline():
        commands += 1
        writer.write(b"200 result=1\n")
    writer.close()
    return commands


async def agi_client(port: int, numbers: list[str], warmup: int, route: str) -> list[float]:
    timings = []
    for i, number in enumerate(numbers[:warmup] + numbers):
        start = time.perf_counter()
        commands = await agi_session(port, number, route)
        if i >= warmup:
            timings.append(time.perf_counter() - start)
        assert commands >= 1, f"the lookup of {number} set no variables"
    return timings


def agi_client_process(
    port: int, numbers: list[str], warmup: int, route: str = "lookup"
) -> list[float]:
    """Plays Asterisk from another process: sequential AGI sessions, each one timed."""
    return asyncio.run(agi_client(port, numbers, warmup, route))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    lookups = CallerLookups(args.database_url)
    engine = create_engine(args.database_url)
    try:
        phases = 3
        numbers, customers = await caller_numbers(session_factory(engine), phases * args.samples)
        print(f"{customers:,} customers; {len(numbers)} caller numbers; {load()}")
        sql_numbers, lookup_numbers, agi_numbers = (numbers[i::phases] for i in range(phases))

        timings: list[float] = []
        dsn = make_url(args.database_url).set(drivername="postgresql")
        conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            statement = await conn.prepare(LOOKUP_SQL_POSTGRESQL)
            for i, number in enumerate(sql_numbers[: args.warmup] + sql_numbers):
                e164 = normalize_phone(number)
                start = time.perf_counter()
                await statement.fetchrow(e164)
                if i >= args.warmup:
                    timings.append(time.perf_counter() - start)
        finally:
            await conn.close()
        print(figures("sql", timings), f" {load()}")

        await lookups.start()

        found = 0
        timings = []
        for i, number in enumerate(lookup_numbers[: args.warmup] + lookup_numbers):
            start = time.perf_counter()
            info = await lookups.lookup(number)
            if i >= args.warmup:
                timings.append(time.perf_counter() - start)
                found += info.customer_id is not None
        print(figures("lookup", timings), f" found {found}/{len(lookup_numbers)}  {load()}")

        # The route as serve runs it: the dialled number looked up in the queues' numbers (in
        # memory; a queue has it only if this database gives it one: nothing is written).
        queues = QueueNumbers(session_factory(engine), interval=3600)
        await queues.refresh()
        route = lookup_route(lookups, queues)
        server = FastAgiServer({"lookup": route, "floor": fixed_variables}, port=0)
        await server.start()
        try:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as client:
                floor = await asyncio.get_running_loop().run_in_executor(
                    client, agi_client_process, server.port, agi_numbers, args.warmup, "floor"
                )
                print(figures("no-db", floor), f" {load()}")
                timings = await asyncio.get_running_loop().run_in_executor(
                    client, agi_client_process, server.port, agi_numbers, args.warmup
                )
            print(figures("fastagi", timings), f" {load()}")
            p99 = statistics.quantiles(timings, n=100, method="inclusive")[98] * 1000
            verdict = "met" if p99 < 5 else "NOT met"
            print(f"goal: whole AGI session p99 < 5 ms: {p99:.2f} ms, {verdict}  ({load()})")
        finally:
            await server.stop()
    finally:
        await lookups.dispose()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())

"""FastAGI caller lookup latency on a large database (read-only).

Measures, over many random caller numbers (90 % numbers of real customers, in varied
spellings, 10 % unknown numbers):
  - sql:     the lookup statement alone on one held connection (the database's share)
  - lookup:  ``lookup_caller`` in a fresh session (pool checkout, pre-ping, one statement)
  - fastagi: the whole AGI session as Asterisk sees it: connect to the FastAGI server, send
             the ``agi_*`` headers, answer each ``SET VARIABLE``, until the server hangs up
Goal from the telephony issue: FastAGI lookup p99 under 5 ms with 1,000,000 customers in
PostgreSQL. Nothing is written to the database.

    .venv/bin/python bench/fastagi_lookup.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1/cc_seed [--samples 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from sqlalchemy import func, select, text

from callcenter.channels.telephony.fastagi import FastAgiServer, lookup_route
from callcenter.channels.telephony.lookup import _LOOKUP, lookup_caller
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


async def agi_session(port: int, number: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "agi_network: yes\nagi_network_script: lookup\nagi_channel: PJSIP/trunk-00000001\n"
            f"agi_callerid: {number}\nagi_calleridname: Иван Петров\n\n"
        ).encode()
    )
    commands = 0
    while await reader.readline():
        commands += 1
        writer.write(b"200 result=1\n")
    writer.close()
    return commands


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    engine = create_engine(args.database_url, pool_size=5)
    sessions = session_factory(engine)
    try:
        numbers, customers = await caller_numbers(sessions, args.samples)
        print(f"{customers:,} customers; {len(numbers)} caller numbers")

        timings: list[float] = []
        async with engine.connect() as conn:
            for i, number in enumerate(numbers[: args.warmup] + numbers):
                e164 = normalize_phone(number)
                start = time.perf_counter()
                (await conn.execute(_LOOKUP, {"number": e164})).first()
                if i >= args.warmup:
                    timings.append(time.perf_counter() - start)
        print(figures("sql", timings))

        found = 0
        timings = []
        for i, number in enumerate(numbers[: args.warmup] + numbers):
            start = time.perf_counter()
            async with sessions() as session:
                info = await lookup_caller(session, number)
            if i >= args.warmup:
                timings.append(time.perf_counter() - start)
                found += info.customer_id is not None
        print(figures("lookup", timings), f" found {found}/{len(numbers)}")

        server = FastAgiServer({"lookup": lookup_route(sessions)}, port=0)
        await server.start()
        try:
            timings = []
            for i, number in enumerate(numbers[: args.warmup] + numbers):
                start = time.perf_counter()
                commands = await agi_session(server.port, number)
                if i >= args.warmup:
                    timings.append(time.perf_counter() - start)
                assert commands >= 4, f"the lookup of {number} set only {commands} variables"
            print(figures("fastagi", timings))
        finally:
            await server.stop()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())

"""FastAGI caller lookup latency on a large database (read-only).

Measures, over many random caller numbers (90 % numbers of real customers, in varied
spellings, 10 % unknown numbers):
  - sql:     the lookup statement alone on one held connection (the database's share)
  - lookup:  ``CallerLookups.lookup`` as the AGI server runs it (its own engine: pool
             checkout without pre-ping, autocommit, one prepared statement)
  - fastagi: the whole AGI session as Asterisk sees it: connect to the FastAGI server, send
             the ``agi_*`` headers, answer each ``SET VARIABLE``, until the server hangs up;
             the client runs in another process, so it does not share the server's loop
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

from sqlalchemy import func, select, text

from callcenter.channels.telephony.fastagi import CallerLookups, FastAgiServer, lookup_route
from callcenter.channels.telephony.lookup import _LOOKUP
from callcenter.db import session_factory
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


async def agi_client(port: int, numbers: list[str], warmup: int) -> list[float]:
    timings = []
    for i, number in enumerate(numbers[:warmup] + numbers):
        start = time.perf_counter()
        commands = await agi_session(port, number)
        if i >= warmup:
            timings.append(time.perf_counter() - start)
        assert commands >= 4, f"the lookup of {number} set only {commands} variables"
    return timings


def agi_client_process(port: int, numbers: list[str], warmup: int) -> list[float]:
    """Plays Asterisk from another process: sequential AGI sessions, each one timed."""
    return asyncio.run(agi_client(port, numbers, warmup))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    lookups = CallerLookups(args.database_url)
    engine = lookups.engine
    try:
        numbers, customers = await caller_numbers(session_factory(engine), args.samples)
        print(f"{customers:,} customers; {len(numbers)} caller numbers; {load()}")

        timings: list[float] = []
        async with engine.connect() as conn:
            for i, number in enumerate(numbers[: args.warmup] + numbers):
                e164 = normalize_phone(number)
                start = time.perf_counter()
                (await conn.execute(_LOOKUP, {"number": e164})).first()
                if i >= args.warmup:
                    timings.append(time.perf_counter() - start)
        print(figures("sql", timings), f" {load()}")

        found = 0
        timings = []
        for i, number in enumerate(numbers[: args.warmup] + numbers):
            start = time.perf_counter()
            info = await lookups.lookup(number)
            if i >= args.warmup:
                timings.append(time.perf_counter() - start)
                found += info.customer_id is not None
        print(figures("lookup", timings), f" found {found}/{len(numbers)}  {load()}")

        server = FastAgiServer({"lookup": lookup_route(lookups)}, port=0)
        await server.start()
        try:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as client:
                timings = await asyncio.get_running_loop().run_in_executor(
                    client, agi_client_process, server.port, numbers, args.warmup
                )
            print(figures("fastagi", timings), f" {load()}")
        finally:
            await server.stop()
    finally:
        await lookups.dispose()


if __name__ == "__main__":
    asyncio.run(main())

"""What a CRM costs the screen-pop: ``build_card`` for a known caller on a local SQLite database,
with no CRM, with a local Bitrix24 stand-in (tests/crm/fakes.py) answering with a configurable
delay, with a cached CRM answer, and with a CRM that never answers (bounded by the lookup
timeout). Prints p50/p99 per case and the load average beside them.

    .venv/bin/python bench/crm_screenpop.py [--samples 200] [--crm-delay-ms 50] [--timeout-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from _common import load, migrated_database
from aiohttp import web

from callcenter.crm.bitrix import Bitrix24
from callcenter.crm.lookup import CrmLookup
from callcenter.domain.customers import attach_identity, create_customer
from callcenter.health import HealthRegistry
from callcenter.models import IdentityKind
from callcenter.screenpop.card import build_card

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.crm.fakes import FakeBitrix24, serving
from tests.crm.test_bitrix import ivan_with_deals

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PHONE = "+79161234567"


def report(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:<34} p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms  ({load()})")


def delayed(fake: FakeBitrix24, delay: float) -> web.Application:
    app = fake.app()

    @web.middleware
    async def slow(request: web.Request, handler):  # type: ignore[no-untyped-def]
        await asyncio.sleep(delay)
        return await handler(request)

    app.middlewares.append(slow)
    return app


async def main(samples: int, crm_delay: float, timeout: float) -> None:
    async with migrated_database() as (_, sessions):
        async with sessions() as session, session.begin():
            customer = await create_customer(session, "Иван Петров", "ru")
            await attach_identity(session, customer, IdentityKind.PHONE, PHONE)

        fake = FakeBitrix24()
        ivan_with_deals(fake)
        async with serving(delayed(fake, crm_delay)) as portal, aiohttp.ClientSession() as http:
            bitrix = Bitrix24(http, portal, fake.USER, fake.CODE)

            async def run(name: str, lookup: CrmLookup | None, fresh: bool) -> None:
                times = []
                for _ in range(samples):
                    if fresh and lookup is not None:
                        lookup._cache.clear()
                    async with sessions() as session:
                        started = time.perf_counter()
                        card = await build_card(session, PHONE, NOW, crm=lookup)
                        times.append(time.perf_counter() - started)
                    assert card.known
                report(name, times)

            health = HealthRegistry()
            await run("no CRM", None, fresh=False)
            wide = CrmLookup(bitrix, timeout=10, health=health)
            await run(f"Bitrix24 {crm_delay * 1000:.0f} ms/request, uncached", wide, fresh=True)
            await run("Bitrix24, cached", wide, fresh=False)
            fake.hang.set()
            hanging = CrmLookup(bitrix, timeout=timeout, health=health)
            await run(f"Bitrix24 hanging, {timeout * 1000:.0f} ms timeout", hanging, fresh=True)
            fake.release.set()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--crm-delay-ms", type=float, default=50)
    parser.add_argument("--timeout-ms", type=float, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.samples, args.crm_delay_ms / 1000, args.timeout_ms / 1000))

"""Memory over a day of traffic replayed at speed: calls (AMI frames through the telephony
service, call records, screen-pops, wallboard) and customer mail (the email ingestor), both into
a fresh PostgreSQL database. After every phase it prints the Python memory still alive
(tracemalloc, after a full collection) and the process's peak RSS, then the growth per 1,000
calls or mails fitted over the phases after the first (warm-up). The CI-sized check is
tests/reliability/test_memory.py.

    .venv/bin/python bench/memory.py [--calls 5000] [--mails 5000] [--phase 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.config import Settings
from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from tests.dbs import postgres_database
from tests.reliability.dayreplay import Phase, growth_per_phase, replay_calls, replay_mail


def _print(kind: str) -> object:
    def report(phase: Phase) -> None:
        print(
            f"  {kind} {phase.done:>6}: {phase.traced_kib / 1024:7.2f} MiB traced, "
            f"peak RSS {phase.rss_kib / 1024:6.1f} MiB",
            flush=True,
        )

    return report


def _summary(kind: str, phases: list[Phase], phase: int, seconds: float) -> None:
    per_thousand = growth_per_phase(phases) * 1000 / phase if len(phases) > 2 else float("nan")
    print(
        f"{kind}: {phases[-1].done} in {seconds:.0f} s; median growth after warm-up "
        f"{per_thousand:+.0f} KiB per 1,000 {kind}"
    )


async def run(calls: int, mails: int, phase: int) -> None:
    logging.disable(logging.WARNING)
    tracemalloc.start()
    async with postgres_database("cc_bench_memory") as url:
        await upgrade_async(url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            started = time.perf_counter()
            phases = await replay_calls(
                sessions, Settings(database_url=url), calls, phase, report=_print("calls")
            )
            _summary("calls", phases, phase, time.perf_counter() - started)
            with tempfile.TemporaryDirectory(prefix="memory-bench-") as data:
                started = time.perf_counter()
                phases = await replay_mail(
                    sessions, Path(data), mails, phase, report=_print("mails")
                )
                _summary("mails", phases, phase, time.perf_counter() - started)
        finally:
            await engine.dispose()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--phase", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.mails, args.phase))


if __name__ == "__main__":
    main()

"""Call load through the real Asterisk: sipp customers into support and sales, sipp agents
answering, `callcenter serve` (in this process) recording every call and pushing the wallboard.

Prints how long the calls took, how many records were written (and whether each call has
exactly one), how far behind the records were, the serve side's CPU per call and the machine's
load average; the wallboard is compared with QueueSummary/QueueStatus at the end. The CI-sized
check of the same (100 calls at once, 20 agents) is tests/reliability/test_call_load.py.

    .venv/bin/python bench/call_load.py [--calls 400] [--agents 20] [--talk-ms 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import Call, CallOutcome
from tests.dbs import postgres_database
from tests.reliability.callload import load_pbx, start_agents, start_callers
from tests.reliability.product import (
    BoardWatch,
    add_staff,
    ami_client,
    asterisk_figures,
    board_figures,
    serving,
    supervisor,
)


async def run(calls: int, agents: int, talk_ms: int, work: Path) -> None:
    per_queue = calls // 2
    async with postgres_database("cc_bench_load") as url:
        await upgrade_async(url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        async with load_pbx(work, agents) as pbx:
            await add_staff(sessions, pbx)
            async with serving(url, pbx, work / "data") as base:
                ami = ami_client(pbx)
                await ami.start()
                visitor = await supervisor(base)
                phones = await start_agents(work, pbx, talk_ms)
                try:
                    async with BoardWatch(visitor) as board:
                        cpu, started = time.process_time(), time.perf_counter()
                        customers = [
                            await start_callers(work, pbx, q, per_queue, rate=per_queue)
                            for q in ("support", "sales")
                        ]
                        peak = 0
                        while any(c.process.returncode is None for c in customers):
                            waiting = sum(board.queue(q)["waiting"] for q in ("support", "sales"))
                            peak = max(peak, waiting)
                            await asyncio.sleep(0.2)
                        calls_done = time.perf_counter()
                        for sipp in customers:
                            code, report = await sipp.finish(timeout=60)
                            if code:
                                print(report)
                        while await _count(sessions) < 2 * per_queue:
                            if time.perf_counter() - calls_done > 60:
                                break
                            await asyncio.sleep(0.1)
                        recorded = time.perf_counter()
                        cpu = time.process_time() - cpu
                        await asyncio.sleep(1.5)
                        agree = {
                            q: (await asterisk_figures(ami, q), board_figures(board, q))
                            for q in ("support", "sales")
                        }
                finally:
                    for phone in phones:
                        await phone.stop()
                    await visitor.close()
                    await ami.stop()
        async with sessions() as session:
            records = list(await session.execute(select(Call.linkedid, Call.outcome)))
        await engine.dispose()
    answered = sum(1 for _, outcome in records if outcome is CallOutcome.ANSWERED)
    print(f"calls placed            {2 * per_queue} ({per_queue} per queue, all at once)")
    print(f"agents                  {agents} (members of both queues), talk {talk_ms} ms")
    print(f"most callers waiting    {peak}")
    print(f"calls finished in       {calls_done - started:.1f} s")
    print(f"records                 {len(records)} ({len({r[0] for r in records})} distinct)")
    print(f"answered                {answered}")
    print(f"last record after       {recorded - calls_done:.2f} s behind the last call")
    print(f"serve CPU per call      {1000 * cpu / max(len(records), 1):.1f} ms (in-process)")
    for queue, (truth, shown) in agree.items():
        verdict = "equal" if truth == shown else f"DIFFER: asterisk {truth} board {shown}"
        print(f"wallboard {queue:<8}      {verdict}")
    print(f"load average            {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


async def _count(sessions) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Call)) or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--talk-ms", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="call-load-") as work:
        asyncio.run(run(args.calls, args.agents, args.talk_ms, Path(work)))


if __name__ == "__main__":
    main()

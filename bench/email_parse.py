"""Parse throughput: messages per second over a mix of the real-world fixtures.

.venv/bin/python bench/email_parse.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from callcenter.channels.email.parse import parse_email

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "email" / "fixtures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    paths = sorted(FIXTURES.glob("*.eml"))
    mails = [path.read_bytes() for path in paths]
    for raw in mails:  # warm up caches and fail early on a broken fixture
        parse_email(raw)
    wall, cpu = [], []
    for _ in range(args.rounds):
        count, started, started_cpu = 0, time.perf_counter(), time.process_time()
        while (elapsed := time.perf_counter() - started) < args.seconds:
            for raw in mails:
                parse_email(raw)
            count += len(mails)
        wall.append(count / elapsed)
        cpu.append(count / (time.process_time() - started_cpu))
    size = sum(map(len, mails)) / len(mails)
    print(f"email parse: {len(mails)} fixtures, mean {size:.0f} bytes each, one core")
    print(f"  median {statistics.median(wall):,.0f} msg/s wall clock ({_rounds(wall)})")
    # CPU time is the steadier figure on a machine shared with other work.
    print(f"  median {statistics.median(cpu):,.0f} msg/s of CPU time ({_rounds(cpu)})")
    timed = zip(paths, mails, strict=True)
    per_kind = sorted(((_time_one(raw), path.name) for path, raw in timed), reverse=True)
    print("  slowest fixtures (CPU ms per parse):")
    for seconds, name in per_kind[:5]:
        print(f"    {seconds * 1000:7.3f}  {name}")


def _rounds(rates: list[float]) -> str:
    return "rounds: " + ", ".join(f"{rate:,.0f}" for rate in rates)


def _time_one(raw: bytes, repeat: int = 50) -> float:
    started = time.process_time()
    for _ in range(repeat):
        parse_email(raw)
    return (time.process_time() - started) / repeat


if __name__ == "__main__":
    main()

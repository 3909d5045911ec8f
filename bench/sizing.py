"""Sizing: how many agents' event streams, and how many screen-pops and calls per second, one
core sustains.

Web process: a real ``callcenter serve`` subprocess (telephony off, as a web replica) pinned
to one CPU, on a fresh PostgreSQL database. This process opens ``--streams`` agents' /events
streams (signed session cookies, real HTTP) plus one supervisor per 25 agents, and raises
screen-pops (a 1.5 kB card each, to random agents) and a wallboard snapshot a second through
the PostgreSQL fan-out, as the telephony process does for a replica. Per offered pop rate:
pops delivered, latency from NOTIFY to the card's last byte at the client (p50/p99), and the
web process's CPU (one core = 100 %) and memory. "Sustained" = every pop delivered, p99
under 250 ms and CPU under 85 %.

Calls: the telephony process's per-call work in this process, the live state fed a day's mix
of AMI events (bench/telephony_state.py's synthetic calls) and the call recorder storing each
finished call (interaction + call rows) in PostgreSQL: calls per second and CPU per call.

    .venv/bin/python bench/sizing.py [--streams 500,1000,2000] [--rates 50,200,800,2000]

The client side runs here on the other CPU and is part of what is measured; the load average
is printed beside each figure because the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
from sqlalchemy import insert

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.telephony_state import fresh_state, synthetic_stream  # noqa: E402
from callcenter.bus import Bus  # noqa: E402
from callcenter.channels.telephony.amiframes import FrameReader  # noqa: E402
from callcenter.channels.telephony.events import CallEnded  # noqa: E402
from callcenter.channels.telephony.pbxconfig import free_port  # noqa: E402
from callcenter.channels.telephony.records import CallRecorder  # noqa: E402
from callcenter.db import create_engine, session_factory  # noqa: E402
from callcenter.migrate import upgrade_async  # noqa: E402
from callcenter.models import Role, User  # noqa: E402
from callcenter.pgnotify import PgNotify, asyncpg_dsn  # noqa: E402
from callcenter.web.cookies import COOKIE_NAME, SessionCodec  # noqa: E402
from callcenter.web.fanout import Fanout  # noqa: E402
from callcenter.web.streams import Hub  # noqa: E402

ADMIN_DSN = os.environ.get("CALLCENTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SESSION_KEY = "sizing-bench-session-key-" + "s" * 32
SERVER_CPU = 1
P99_LIMIT_MS = 250.0
CPU_LIMIT = 85.0
HISTORY = [f"Заказ №{10000 + n} не пришёл, пишу уже второй раз — где посылка?" for n in range(12)]


def load() -> float:
    return os.getloadavg()[0]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# ---- the web process ---------------------------------------------------------------------


@dataclass
class Server:
    process: asyncio.subprocess.Process
    base: str

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


async def start_server(url: str, data_dir: Path) -> Server:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")},
        "CALLCENTER_DATABASE_URL": url,
        "CALLCENTER_DATA_DIR": str(data_dir),
        "CALLCENTER_SESSION_KEY": SESSION_KEY,
        "CALLCENTER_AGI_PORT": str(free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcenter.cli", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=(data_dir / "serve.log").open("wb"),
        preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(base + "/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError((data_dir / "serve.log").read_text())
    await asyncio.sleep(2)  # the fan-out's LISTEN
    return Server(process, base)


@dataclass
class Client:
    """One browser's stream: counts cards and their latency (NOTIFY-side clock, same host)."""

    user_id: int
    latencies: list[float] = field(default_factory=list)
    boards: int = 0

    async def run(self, http: aiohttp.ClientSession, base: str, cookie: str, ready) -> None:
        headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
        async with http.get(base + "/events", headers=headers, timeout=None) as response:
            assert response.status == 200, response.status
            ready()
            event = b""
            async for line in response.content:
                if line.startswith(b"event: "):
                    event = line[7:-1]
                elif line.startswith(b"data: ") and event == b"card":
                    sent = json.loads(line[6:])["sent"]
                    self.latencies.append((time.time() - sent) * 1000)
                elif line.startswith(b"data: ") and event == b"wallboard":
                    self.boards += 1


async def add_users(url: str, agents: int, supervisors: int) -> tuple[list[int], list[int]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            rows = [
                {"username": f"agent{n}", "role": Role.AGENT, "password_hash": "-"}
                for n in range(agents)
            ] + [
                {"username": f"super{n}", "role": Role.SUPERVISOR, "password_hash": "-"}
                for n in range(supervisors)
            ]
            ids = list((await conn.execute(insert(User).returning(User.id), rows)).scalars())
        return ids[:agents], ids[agents:]
    finally:
        await engine.dispose()


def card(sent: float, linkedid: int) -> dict[str, object]:
    return {
        "id": f"pop:{linkedid}",
        "type": "screenpop",
        "queue": "support",
        "caller_name": "Иван Петров",
        "caller_number": "+79161234567",
        "customer_name": "Иван Петров",
        "history": HISTORY,
        "ticket_ids": [101, 102],
        "sent": sent,
    }


def board(queues: int = 10, agents: int = 50) -> dict[str, object]:
    return {
        "queues": [{"name": f"q{n}", "waiting": n % 3, "answered": 100 + n} for n in range(queues)],
        "agents": [{"interface": f"PJSIP/{1000 + n}", "state": "idle"} for n in range(agents)],
    }


async def web_round(
    url: str, tmp: Path, streams: int, rates: list[int], seconds: float
) -> list[str]:
    agents, supervisors = await add_users(url, streams, max(1, streams // 25))
    server = await start_server(url, tmp / f"web-{streams}")
    codec = SessionCodec(SESSION_KEY)
    hub = Hub()
    fanout = Fanout(hub)
    notify = PgNotify(asyncpg_dsn(url), fanout.incoming, fanout.resynced)
    fanout.attach(notify.send)
    stop = asyncio.Event()
    sender = asyncio.create_task(notify.run(stop))
    lines = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        clients = [Client(u) for u in agents + supervisors]
        connected = 0

        def ready() -> None:
            nonlocal connected
            connected += 1

        tasks = []
        for client in clients:
            cookie = codec.encode({"uid": client.user_id, "ep": 0, "csrf": "x"})
            tasks.append(asyncio.create_task(client.run(http, server.base, cookie, ready)))
            if len(tasks) % 100 == 0:
                await asyncio.sleep(0.05)
        while connected < len(clients):
            await asyncio.sleep(0.1)
            if any(t.done() for t in tasks):
                raise RuntimeError(next(t.exception() for t in tasks if t.done()))
        await asyncio.sleep(2)
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        await asyncio.sleep(5)
        idle = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0) * 100
        lines.append(
            f"{streams:>7} streams + {len(supervisors)} supervisors connected: "
            f"idle CPU {idle:5.1f} %, RSS {server.rss_mb():.0f} MB (load {load():.1f})"
        )
        rng = random.Random(7)
        linkedid = 0
        for rate in rates:
            for client in clients:
                client.latencies.clear()
            cpu0, t0 = server.cpu_seconds(), time.monotonic()
            sent, next_board = 0, t0
            while (now := time.monotonic()) - t0 < seconds:
                due = int((now - t0) * rate) - sent
                for _ in range(due):
                    linkedid += 1
                    hub.publish_to_user(rng.choice(agents), "card", card(time.time(), linkedid))
                sent += max(due, 0)
                if now >= next_board:
                    hub.publish_to_role(Role.SUPERVISOR, "wallboard", board())
                    next_board += 1.0
                await asyncio.sleep(0.01)
            await asyncio.sleep(2.0)  # let the last pops arrive
            cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0 - 2.0) * 100
            got = [ms for c in clients for ms in c.latencies]
            p50, p99 = percentile(got, 50), percentile(got, 99)
            ok = len(got) == sent and p99 < P99_LIMIT_MS and cpu < CPU_LIMIT
            lines.append(
                f"{streams:>7} streams, {rate:>5} pops/s offered: delivered {len(got)}/{sent}, "
                f"p50 {p50:6.1f} ms, p99 {p99:7.1f} ms, web CPU {cpu:5.1f} %, "
                f"RSS {server.rss_mb():.0f} MB {'sustained' if ok else 'NOT sustained'}"
                f" (load {load():.1f})"
            )
            print(lines[-1], flush=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    stop.set()
    await sender
    server.process.terminate()
    await server.process.wait()
    return lines


# ---- calls -------------------------------------------------------------------------------


async def calls_round(url: str, count: int) -> str:
    """Live state + call recorder for about ``count`` synthetic calls; calls/s stored."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    bus = Bus()
    recorder = CallRecorder(sessions)
    recorder.subscribe(bus)
    state = fresh_state()
    reader = FrameReader()
    data = "".join(synthetic_stream(count * 40, concurrent=50)).encode()
    ended = 0

    async def count_ended(_: CallEnded) -> None:
        nonlocal ended
        ended += 1

    bus.subscribe(CallEnded, count_ended)
    recorder.start()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, len(data), 65536):
        for headers in reader.feed(data[start : start + 65536]):
            for event in state.apply(headers, datetime.now(UTC)):
                bus.publish(event)
        await asyncio.sleep(0)
    await bus.drain()
    await recorder.drain()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await recorder.stop()
    await engine.dispose()
    return (
        f"calls: {ended} calls through live state and recorder in {seconds:.1f} s: "
        f"{ended / seconds:.0f} calls/s, {cpu / max(ended, 1) * 1000:.2f} ms CPU per call in this "
        f"process (+ PostgreSQL) (load {load():.1f})"
    )


async def fresh_database() -> str:
    name = f"cc_sizing_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    await upgrade_async(url)
    return url


async def drop_database(url: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="500,1000,2000")
    parser.add_argument("--rates", default="50,200,800,2000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--tmp", type=Path, default=Path("/tmp/callcenter-sizing"))
    args = parser.parse_args()
    args.tmp.mkdir(parents=True, exist_ok=True)
    rates = [int(r) for r in args.rates.split(",")]
    print(f"{os.cpu_count()} CPUs; web process pinned to CPU {SERVER_CPU} (load {load():.1f})")
    results = []
    for streams in (int(s) for s in args.streams.split(",")):
        url = await fresh_database()
        try:
            results += await web_round(url, args.tmp, streams, rates, args.seconds)
        finally:
            await drop_database(url)
    url = await fresh_database()
    try:
        results.append(await calls_round(url, args.calls))
    finally:
        await drop_database(url)
    print("\n".join(["", *results]))


if __name__ == "__main__":
    asyncio.run(main())

"""Wallboard lag: an AMI event written to the adapter's socket, to the wallboard frame read by
each of N supervisor browsers on the real ``/events`` stream of the real web app.

  local AMI server --TCP--> AmiClient -> LiveState -> Bus -> Wallboard (throttle) ->
  Hub.publish_to_role -> /events (aiohttp) --HTTP--> N SSE clients in another process

``callcenter serve`` runs in this process against a local AMI server that answers the login and
the resync (QueueStatus, CoreShowChannels) as Asterisk 22 does, then writes the frames of
callers joining the queue and giving up (QueueCallerJoin, QueueCallerAbandon, Hangup), one at a
time, 20-350 ms apart (bursts and quiet spells around the wallboard's throttle). The browsers
are ``--browsers`` streaming HTTP connections of one signed-in supervisor, read in a child
process (so that reading them does not slow the server down), which notes when each caller
first appears on, and vanishes from, each stream. Both processes read CLOCK_MONOTONIC, so the
lags are comparable.

Goal from the dashboard issue: p99 < 100 ms with 100 browsers.

    .venv/bin/python bench/dashboard.py [--browsers 100] [--callers 150] [--database-url URL]

Without ``--database-url`` a migrated SQLite file in a temporary folder is used (the calls the
recorder stores go there) and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import delete

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.config import Settings
from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import Role, User
from callcenter.passwords import hash_password
from callcenter.serve import serve

UID = "1800000000"
MARKER = re.compile(rb'"linkedid":"' + UID.encode() + rb'\.(\d+)"')
PASSWORD = "bench-supervisor-password"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# ---- the local AMI server ----------------------------------------------------------------


def frame(**headers: object) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


QUEUE_PARAMS = dict(
    Event="QueueParams", Queue="support", Max=0, Strategy="rrmemory", Calls=0, Holdtime=0,
    TalkTime=0, Completed=0, Abandoned=0, ServiceLevel=20, ServicelevelPerf="0.0",
    ServicelevelPerf2="0.0", Weight=0,
)  # fmt: skip


def member(n: int) -> dict[str, object]:
    return dict(
        Event="QueueMember", Queue="support", Name=f"Agent {n}", Location=f"PJSIP/{n}",
        StateInterface=f"PJSIP/{n}", Membership="static", Penalty=0, CallsTaken=0, LastCall=0,
        LastPause=0, LoginTime=1795818000, InCall=0, Status=5, Paused=1,
        PausedReason="обучение", Wrapuptime=0,
    )  # fmt: skip


def caller(n: int) -> dict[str, object]:
    uid = f"{UID}.{n}"
    return dict(
        Privilege="agent,all", Channel=f"PJSIP/trunk-{n:08x}", ChannelState=6,
        ChannelStateDesc="Up", CallerIDNum=f"+7916{n:07d}", CallerIDName="Иван Петров",
        ConnectedLineNum="<unknown>", ConnectedLineName="<unknown>", Language="ru",
        AccountCode="", Context="inbound", Exten="s", Priority=7, Uniqueid=uid, Linkedid=uid,
    )  # fmt: skip


def join(n: int) -> bytes:
    return frame(Event="QueueCallerJoin", **caller(n), Queue="support", Position=1, Count=1)


def abandon(n: int) -> bytes:
    return frame(Event="QueueCallerAbandon", **caller(n), Queue="support", Position=1,
                 OriginalPosition=1, HoldTime=1)  # fmt: skip


def hangup(n: int) -> bytes:
    return frame(Event="Hangup", **caller(n), Cause=16, **{"Cause-txt": "Normal Clearing"})


class LocalAmi:
    """Answers like Asterisk: a banner, the login, FullyBooted, the resync lists and Pings."""

    def __init__(self, agents: int = 4) -> None:
        self.agents = agents
        self.writer: asyncio.StreamWriter | None = None
        self.resynced = asyncio.Event()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        if self.writer is not None:
            self.writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = raw.decode().split("\r\n")
            action = dict(line.split(": ", 1) for line in lines if ": " in line)
            writer.write(self._answer(action))
            if action.get("Action") == "Login":
                self.writer = writer
                writer.write(
                    frame(Event="FullyBooted", Privilege="system,all", Status="Fully Booted")
                )
            await writer.drain()

    def _answer(self, action: dict[str, str]) -> bytes:
        aid = action.get("ActionID", "")
        name = action.get("Action", "")
        if name == "QueueStatus":
            items = [QUEUE_PARAMS, *(member(1001 + n) for n in range(self.agents))]
            return (
                frame(Response="Success", ActionID=aid, EventList="start",
                      Message="Queue status will follow")
                + b"".join(frame(**item, ActionID=aid) for item in items)
                + frame(Event="QueueStatusComplete", ActionID=aid, EventList="Complete",
                        ListItems=len(items))
            )  # fmt: skip
        if name == "CoreShowChannels":
            self.resynced.set()
            return frame(
                Response="Success", ActionID=aid, EventList="start",
                Message="Channels will follow",
            ) + frame(Event="CoreShowChannelsComplete", ActionID=aid, EventList="Complete",
                      ListItems=0)  # fmt: skip
        if name == "Ping":
            return frame(Response="Success", ActionID=aid, Ping="Pong", Timestamp=time.time())
        return frame(Response="Success", ActionID=aid, Message="Authentication accepted")

    async def send(self, data: bytes) -> int:
        """Write one event; returns CLOCK_MONOTONIC in ns just before the write."""
        assert self.writer is not None, "the adapter has not logged in"
        started = time.monotonic_ns()
        self.writer.write(data)
        await self.writer.drain()
        return started


# ---- the browsers (child process) --------------------------------------------------------


async def browsers(base: str, cookie: str, count: int) -> None:
    """Read `count` /events streams until stdin closes; print when each caller appeared on and
    vanished from each stream, as JSON: {"appear": {n: [ns, ...]}, "vanish": {...}}."""
    appear: dict[int, list[int]] = {}
    vanish: dict[int, list[int]] = {}
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Cookie": cookie, "Accept": "text/event-stream"}
    ready = 0
    all_ready = asyncio.Event()
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def read() -> None:
            nonlocal ready
            shown: set[int] = set()
            async with http.get(base + "/events", timeout=aiohttp.ClientTimeout()) as response:
                assert response.status == 200, response.status
                ready += 1
                if ready == count:
                    all_ready.set()
                async for line in response.content:
                    if not line.startswith(b"data: "):
                        continue
                    now = time.monotonic_ns()
                    seen = {int(n) for n in MARKER.findall(line)}
                    for n in seen - shown:
                        appear.setdefault(n, []).append(now)
                    for n in shown - seen:
                        vanish.setdefault(n, []).append(now)
                    shown = seen

        tasks = [asyncio.create_task(read()) for _ in range(count)]
        await all_ready.wait()
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"appear": appear, "vanish": vanish}), flush=True)


# ---- the product -------------------------------------------------------------------------


async def prepared_database(url: str | None, folder: Path) -> str:
    url = url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await session.execute(delete(User).where(User.username == "bench-supervisor"))
            session.add(
                User(
                    username="bench-supervisor",
                    display_name="Bench",
                    role=Role.SUPERVISOR,
                    password_hash=hash_password(PASSWORD),
                )
            )
    finally:
        await engine.dispose()
    return url


async def sign_in(base: str) -> str:
    """The session cookie of the bench supervisor, as a Cookie header."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(base + "/login") as response:
            page = await response.text()
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
        assert csrf, "no CSRF token on /login"
        form = {"username": "bench-supervisor", "password": PASSWORD, "_csrf": csrf[1]}
        async with http.post(base + "/login", data=form, allow_redirects=False) as response:
            assert response.status == 303, response.status
        return "; ".join(f"{c.key}={c.value}" for c in jar)


async def healthy(base: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = await prepared_database(args.database_url, Path(folder))
        ami = LocalAmi()
        await ami.start()
        port = free_port()
        settings = Settings(
            data_dir=Path(folder),
            database_url=url,
            ami_port=ami.port,
            ami_password="bench-ami-secret",
            agi_port=free_port(),
            session_key="bench-session-key-" + "x" * 32,
        )
        stop = asyncio.Event()
        product = asyncio.create_task(serve(settings, "127.0.0.1", port, stop))
        base = f"http://127.0.0.1:{port}"
        try:
            async with asyncio.timeout(60):
                while not await healthy(base) or not ami.resynced.is_set():
                    assert not product.done(), product
                    await asyncio.sleep(0.2)
            appear, vanish, sent = await measure(base, await sign_in(base), ami, args)
        finally:
            stop.set()
            await asyncio.wait_for(product, 30)
            await ami.stop()
    report(appear, vanish, sent, args.browsers)


async def measure(
    base: str, cookie: str, ami: LocalAmi, args: argparse.Namespace
) -> tuple[dict[str, list[int]], dict[str, list[int]], dict[str, dict[int, int]]]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", base, cookie, str(args.browsers),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    assert (await child.stdout.readline()).strip() == b"ready", "the browsers did not connect"
    await asyncio.sleep(1.0)
    sent: dict[str, dict[int, int]] = {"appear": {}, "vanish": {}}
    rng = random.Random(7)
    for n in range(args.callers):
        sent["appear"][n] = await ami.send(join(n))
        await asyncio.sleep(rng.uniform(0.02, 0.35))
        sent["vanish"][n] = await ami.send(abandon(n))
        await ami.send(hangup(n))
        await asyncio.sleep(rng.uniform(0.02, 0.35))
    await asyncio.sleep(1.0)
    child.stdin.write(b"stop\n")
    await child.stdin.drain()
    result = json.loads(await child.stdout.readline())
    await child.wait()
    return result["appear"], result["vanish"], sent


def report(
    appear: dict[str, list[int]],
    vanish: dict[str, list[int]],
    sent: dict[str, dict[int, int]],
    browsers: int,
) -> None:
    rows = []
    expected = len(sent["appear"]) * browsers
    for label, key, seen in (
        ("caller joins -> shown", "appear", appear),
        ("caller abandons -> gone", "vanish", vanish),
    ):
        lags = [(at - sent[key][int(n)]) / 1e6 for n, times in seen.items() for at in times]
        rows.append((label, lags, expected))
    rows.append(("both", rows[0][1] + rows[1][1], rows[0][2] + rows[1][2]))
    print(f"{browsers} supervisor browsers on /events, {len(sent['appear'])} callers")
    heads = ("n", "of", "p50", "p95", "p99", "max")
    print(f"{'event -> every browser':<26}", *(f"{h:>6}" for h in heads))
    for kind, lags, expected in rows:
        p50, p95, p99 = (percentile(lags, p) for p in (50, 95, 99))
        print(
            f"{kind:<26} {len(lags):>6} {expected:>6} {p50:>6.1f} {p95:>6.1f} {p99:>6.1f}"
            f" {max(lags):>6.1f}"
        )
    print(
        "(milliseconds) load average: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + f" on {os.cpu_count()} cores"
    )


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        asyncio.run(browsers(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, default=100)
    parser.add_argument("--callers", type=int, default=150)
    parser.add_argument("--database-url", help="a database to use (migrated; one user added)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Screen-pop latency: AgentCalled read off the AMI socket to the card's last byte on the agent's
stream, with the real parts in one process:

  AMI bytes -> FrameReader -> LiveState.apply -> Bus -> ScreenPopService -> Hub.publish_to_user
  -> the agent's connection, drained by streams.pump into a real socket (socketpair).

The caller first joins the queue (QueueCallerJoin), and the card built for that CallerJoined is
awaited before the AgentCalled frame is fed, as a caller waits in the queue in production. The
clock starts just before the AgentCalled bytes go into FrameReader (parsing is timed) and stops
when the agent's pump has written the card and ``drain()`` returned. ``--agents`` browsers are
connected meanwhile; one warm-up call per agent (the service looks each endpoint up once) is not
counted. Beside it: the card built without the cache (``build_card`` in a fresh session per call)
and one primary-key SELECT round trip on a held connection, the floor.

Goal from the screen-pop issue: p50 < 2 ms, p99 < 10 ms; uncached card p99 < 20 ms; both about
the same at 10,000 and 1,000,000 customers.

Writes to the database: ``--agents`` agent users (PJSIP/2000...) added idempotently, and the
screen_pops rows the service records, which are deleted again at the end. The small database
(10,000 customers) is created, migrated, seeded and dropped unless ``--small-database-url``
names an existing one.

    .venv/bin/python bench/screenpop.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1/cc_seed2 [--samples 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.telephony.amiframes import FrameReader
from callcenter.channels.telephony.state import LiveState
from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import Customer, Identity, IdentityKind, Role, ScreenPop, User
from callcenter.screenpop.card import build_card
from callcenter.screenpop.service import ScreenPopService
from callcenter.seed import seed
from callcenter.web.streams import Connection, Hub, pump

SMALL_DB = "cc_bench_small"
SMALL_CUSTOMERS = 10_000
LINKEDID_PREFIX = "9999"  # screen_pops rows of this bench: linkedid "9999<n>.<n>"
NAMES = ["Иван Петров", "Ёлкина Жанна", "Мария Сидорова-Щукина", "Пётр Иванович Кузнецов"]
CARD_FRAME = b"event: card\n"


@dataclass
class Row:
    customers: int
    metric: str
    ms: list[float]
    load: float
    """The 1-minute load average when the measurement ended."""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# ---- AMI frames --------------------------------------------------------------------------


def _frame(event: str, **headers: object) -> bytes:
    body = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"Event: {event}\r\nPrivilege: agent,all\r\n{body}\r\n".encode()


def _caller(uid: str, number: str, name: str) -> dict[str, object]:
    return {
        "Channel": f"PJSIP/trunk-{uid.replace('.', '')}", "ChannelState": 6,
        "ChannelStateDesc": "Up", "CallerIDNum": number, "CallerIDName": name,
        "ConnectedLineNum": "<unknown>", "ConnectedLineName": "<unknown>", "Language": "ru",
        "AccountCode": "", "Context": "from-trunk", "Exten": "s", "Priority": 7,
        "Uniqueid": uid, "Linkedid": uid,
    }  # fmt: skip


def join_frame(uid: str, number: str, name: str) -> bytes:
    return _frame("QueueCallerJoin", **_caller(uid, number, name), Queue="support", Position=1,
                  Count=1)  # fmt: skip


def called_frame(uid: str, number: str, name: str, interface: str) -> bytes:
    leg = f"{interface}-{uid.replace('.', '')}"
    return _frame(
        "AgentCalled", **_caller(uid, number, name), DestChannel=leg, DestChannelState=5,
        DestCallerIDNum=interface[-4:], DestCallerIDName="Агент", DestUniqueid=f"{uid}1",
        DestLinkedid=uid, Queue="support", Interface=interface,
        MemberName=f"Агент {interface[-4:]}",
    )  # fmt: skip


def hangup_frame(uid: str, number: str, name: str) -> bytes:
    return _frame("Hangup", **_caller(uid, number, name), Cause=16, **{"Cause-txt": "Normal"})


# ---- agents' browsers --------------------------------------------------------------------


class Browser:
    """One connected stream: streams.pump writes into one end of a socketpair, a reader task
    empties the other; ``card_written`` is resolved with the time the card's drain returned."""

    def __init__(self, hub: Hub, user_id: int) -> None:
        self.conn: Connection = hub.connect(user_id, Role.AGENT, lambda: None)
        self.card_written: asyncio.Future[float] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        _, self._writer = await asyncio.open_connection(sock=ours)
        reader, self._peer = await asyncio.open_connection(sock=theirs)
        self._tasks = [
            asyncio.create_task(pump(self.conn, self._write)),
            asyncio.create_task(self._read(reader)),
        ]

    async def _write(self, frame: bytes) -> None:
        self._writer.write(frame)
        await self._writer.drain()
        if frame.startswith(CARD_FRAME) and self.card_written and not self.card_written.done():
            self.card_written.set_result(time.perf_counter())

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    async def close(self, hub: Hub) -> None:
        hub.disconnect(self.conn)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writer.close()
        self._peer.close()


# ---- database ----------------------------------------------------------------------------


async def ensure_agents(sessions: async_sessionmaker[AsyncSession], count: int) -> dict[str, int]:
    """user id by endpoint for PJSIP/2000.. (added if missing)."""
    endpoints = [f"PJSIP/{2000 + n}" for n in range(count)]
    rows = [
        {"username": f"bench-agent-{e[-4:]}", "display_name": f"Агент {e[-4:]}",
         "role": Role.AGENT, "sip_endpoint": e, "active": True}
        for e in endpoints
    ]  # fmt: skip
    async with sessions() as session, session.begin():
        await session.execute(insert(User).values(rows).on_conflict_do_nothing())
        found = await session.execute(
            select(User.sip_endpoint, User.id).where(
                User.sip_endpoint.in_(endpoints), User.active.is_(True)
            )
        )
        agents = {e: uid for e, uid in found if e}
    if len(agents) != count:
        raise SystemExit(f"only {len(agents)} of {count} agent endpoints are active users")
    return agents


async def sample_callers(sessions: async_sessionmaker[AsyncSession], count: int) -> list[str]:
    """Phone numbers of random seeded customers."""
    async with sessions() as session:
        top = await session.scalar(select(func.max(Customer.id))) or 0
        ids = random.Random(11).sample(range(1, top + 1), min(top, count * 2))
        numbers = list(
            await session.scalars(
                select(Identity.value).where(
                    Identity.kind == IdentityKind.PHONE, Identity.customer_id.in_(ids)
                )
            )
        )
    random.Random(12).shuffle(numbers)
    if len(numbers) < count:
        numbers = (numbers * (count // max(1, len(numbers)) + 1))[:count]
    return numbers[:count]


# ---- measurements ------------------------------------------------------------------------


async def screen_pop_latency(
    sessions: async_sessionmaker[AsyncSession], agents: dict[str, int], callers: list[str]
) -> list[float]:
    bus, hub, state, reader = Bus(), Hub(), LiveState(), FrameReader()
    service = ScreenPopService(sessions, hub.publish_to_user)
    service.subscribe(bus)
    browsers = {uid: Browser(hub, uid) for uid in agents.values()}
    for browser in browsers.values():
        await browser.start()
    reader.feed(b"Asterisk Call Manager/9.0.0\r\n")
    interfaces = list(agents)

    def feed(data: bytes) -> None:
        for headers in reader.feed(data):
            for event in state.apply(headers, datetime.now(UTC)):
                bus.publish(event)

    async def call(n: int, number: str) -> float:
        uid, name = f"{LINKEDID_PREFIX}{n}.{n}", NAMES[n % len(NAMES)]
        interface = interfaces[n % len(interfaces)]
        feed(join_frame(uid, number, name))
        await bus.drain()
        await service._cards[uid][1]  # the card built while the caller waits
        browser = browsers[agents[interface]]
        browser.card_written = asyncio.get_running_loop().create_future()
        data = called_frame(uid, number, name, interface)
        started = time.perf_counter()
        feed(data)
        written = await browser.card_written
        await bus.drain()
        await asyncio.gather(*service._tasks)  # the screen_pops row, before the next call
        feed(hangup_frame(uid, number, name))
        await bus.drain()
        return (written - started) * 1000

    try:
        for n, number in enumerate(callers[: len(interfaces)]):  # warm-up: each agent once
            await call(n, number)
        measured = callers[len(interfaces) :]
        return [await call(len(interfaces) + n, number) for n, number in enumerate(measured)]
    finally:
        for browser in browsers.values():
            await browser.close(hub)


async def uncached_cards(
    sessions: async_sessionmaker[AsyncSession], callers: list[str]
) -> list[float]:
    times = []
    for number in callers:
        started = time.perf_counter()
        async with sessions() as session:
            card = await build_card(session, number, datetime.now(UTC))
        times.append((time.perf_counter() - started) * 1000)
        assert card.known, number
    return times


async def primary_key_round_trips(engine: AsyncEngine, count: int) -> list[float]:
    query = text("SELECT id FROM customers WHERE id = :id")
    rng = random.Random(13)
    times = []
    async with engine.connect() as conn:
        top = await conn.scalar(text("SELECT max(id) FROM customers"))
        await conn.execute(query, {"id": 1})
        for _ in range(count):
            key = rng.randint(1, top)
            started = time.perf_counter()
            (await conn.execute(query, {"id": key})).scalar_one()
            times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(url: str, samples: int, agent_count: int) -> list[Row]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        agents = await ensure_agents(sessions, agent_count)
        # The uncached cards are built for other callers than the screen-pops, so that
        # PostgreSQL's buffers do not already hold their rows.
        callers = await sample_callers(sessions, agent_count + 2 * samples)
        async with sessions() as session:
            customers = await session.scalar(select(func.count()).select_from(Customer)) or 0
        pops = await screen_pop_latency(sessions, agents, callers[: agent_count + samples])
        pops_load = os.getloadavg()[0]
        cards = await uncached_cards(sessions, callers[agent_count + samples :])
        cards_load = os.getloadavg()[0]
        floor = await primary_key_round_trips(engine, samples)
        floor_load = os.getloadavg()[0]
        async with sessions() as session, session.begin():
            await session.execute(
                delete(ScreenPop).where(ScreenPop.linkedid.like(f"{LINKEDID_PREFIX}%.%"))
            )
    finally:
        await engine.dispose()
    return [
        Row(customers, "AgentCalled -> card written", pops, pops_load),
        Row(customers, "card built, no cache", cards, cards_load),
        Row(customers, "PK SELECT round trip", floor, floor_load),
    ]


# ---- the small database ------------------------------------------------------------------


async def _admin(url: str, statement: str) -> None:
    engine = create_engine(make_url(url).set(database="postgres").render_as_string(False),
                           isolation_level="AUTOCOMMIT")  # fmt: skip
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_small(url: str) -> str:
    small = make_url(url).set(database=SMALL_DB).render_as_string(False)
    await _admin(url, f"DROP DATABASE IF EXISTS {SMALL_DB} WITH (FORCE)")
    await _admin(url, f"CREATE DATABASE {SMALL_DB}")
    await upgrade_async(small)
    engine = create_engine(small)
    try:
        report = await seed(engine, SMALL_CUSTOMERS)
    finally:
        await engine.dispose()
    print(f"{SMALL_DB}: seeded {report.customers} customers in {report.seconds:.1f} s")
    return small


def print_table(rows: list[Row]) -> None:
    print(
        f"{'customers':>10}  {'metric':<28} {'n':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}"
        f" {'load1':>6}"
    )
    for row in rows:
        p50, p90, p99 = (percentile(row.ms, p) for p in (50, 90, 99))
        print(
            f"{row.customers:>10,}  {row.metric:<28} {len(row.ms):>5} {p50:>7.2f} {p90:>7.2f} "
            f"{p99:>7.2f} {max(row.ms):>7.2f} {row.load:>6.2f}"
        )
    print(f"(milliseconds; load1: 1-minute load average on {os.cpu_count()} cores)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1/cc_seed2"
    )
    parser.add_argument("--small-database-url", help=f"an existing small database instead of "
                        f"creating {SMALL_DB} with {SMALL_CUSTOMERS:,} customers")  # fmt: skip
    parser.add_argument("--no-small", action="store_true", help="measure --database-url only")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=200)
    args = parser.parse_args()

    rows: list[Row] = []
    if not args.no_small:
        small = args.small_database_url or await create_small(args.database_url)
        try:
            rows += await measure(small, args.samples, args.agents)
        finally:
            if not args.small_database_url:
                await _admin(args.database_url, f"DROP DATABASE IF EXISTS {SMALL_DB} WITH (FORCE)")
    rows += await measure(args.database_url, args.samples, args.agents)
    print(f"{args.agents} agent browsers connected, {args.samples} calls per database")
    print_table(rows)
    print(
        "load average: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + f" on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    asyncio.run(main())

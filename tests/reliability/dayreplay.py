"""A day of contact-centre traffic replayed at speed through the product's in-process parts,
with the memory measured after every phase (for tests/reliability/test_memory.py and
bench/memory.py).

Calls: AMI frames of realistic queued calls (bench/telephony_state.one_call: answered, ring-no-
answer, abandoned, timed out, missed) spread over 24 simulated hours, parsed by the AMI frame
reader and applied by the telephony service (live state, bus, call recorder into the database,
screen-pops, the wallboard pushing to a supervisor's event stream, the call rules bridge).
Mail: customer mail (a third of it replies to earlier mail) stored by the email ingestor.
Nothing is kept by the replay itself: frames and mails are made as they are needed.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import heapq
import itertools
import random
import resource
import statistics
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.telephony_state import login_events, one_call
from callcenter.automation.calls import bridge_calls
from callcenter.bus import Bus
from callcenter.channels.email.ingest import EmailIngestor
from callcenter.channels.telephony.amiframes import FrameReader
from callcenter.channels.telephony.service import TelephonyService
from callcenter.config import Settings
from callcenter.dashboard.wallboard import Wallboard
from callcenter.models import Role
from callcenter.screenpop.service import ScreenPopService
from callcenter.web.streams import Hub

DAY = timedelta(hours=24)
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Phase:
    done: int  # calls or mails handled so far
    traced_kib: float  # Python objects still alive (tracemalloc), after a full collection
    rss_kib: int  # the process's peak resident set so far (ru_maxrss)


def _clear_bounded_caches() -> None:
    """Empty every functools cache with a maxsize: bounded by construction, so they cannot
    leak, but while they fill (decoded headers of 4,096 distinct mails) they read as growth.
    Unbounded caches are left alone, so a leak through one still shows."""
    for obj in gc.get_objects():
        if isinstance(obj, functools._lru_cache_wrapper) and obj.cache_parameters()["maxsize"]:
            obj.cache_clear()


def _measure(done: int) -> Phase:
    _clear_bounded_caches()
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Phase(done, current / 1024, rss)


def _frames(calls: int, seed: int = 11) -> Iterator[tuple[datetime, bytes]]:
    """The calls' AMI frames in time order over one day, each call made when it starts."""
    rng = random.Random(seed)
    spacing = DAY.total_seconds() / calls
    pending: list[tuple[float, int, str]] = []
    sequence = 0
    for n in range(calls):
        start = n * spacing
        while pending and pending[0][0] <= start:
            at, _, frame = heapq.heappop(pending)
            yield START + timedelta(seconds=at), frame.encode()
        for offset, frame in one_call(n, rng):
            heapq.heappush(pending, (start + offset, sequence, frame))
            sequence += 1
    while pending:
        at, _, frame = heapq.heappop(pending)
        yield START + timedelta(seconds=at), frame.encode()


class _Clock:
    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        return self.at


async def replay_calls(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    calls: int,
    phase: int,
    report: Callable[[Phase], None] = lambda _: None,
) -> list[Phase]:
    """Replay `calls` calls; measure after every `phase` calls have ended."""
    bus, hub, clock = Bus(), Hub(), _Clock()
    service = TelephonyService(settings, sessions, bus, now=clock)
    ScreenPopService(sessions, hub.publish_to_user).subscribe(bus)
    wallboard = Wallboard(service.state, hub.publish_to_role, now=clock)
    wallboard.subscribe(bus)
    bridge_calls(bus)
    watcher = hub.connect(1, Role.SUPERVISOR, abort=lambda: None)
    service.state.resync_begin()
    for headers in login_events():
        service.state.apply(headers, clock())
    service.recorder.start()
    reader, phases, ended, next_tick = FrameReader(), [], 0, START
    try:
        for at, frame in _frames(calls):
            clock.at = at
            for headers in reader.feed(frame):
                service._apply(headers)  # what the AMI listener does with each event
                if headers.get("Event") == "Hangup" and "trunk" in headers.get("Channel", ""):
                    ended += 1
                    if ended % phase == 0:
                        await _settle(service, wallboard, watcher, bus)
                        phases.append(_measure(ended))
                        report(phases[-1])
            if at >= next_tick:  # the service ticks once a second
                for event in service.state.tick(at):
                    bus.publish(event)
                next_tick = at + timedelta(seconds=1)
                await asyncio.sleep(0)
    finally:
        await service.recorder.drain()
        await service.recorder.stop()
    return phases


async def _settle(service: TelephonyService, wallboard: Wallboard, watcher, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    """Let the recorder and subscribers catch up; the supervisor's browser reads its stream.

    Work still queued is not retained memory: on a busy machine the screen-pops being built
    when a phase ends would otherwise look like growth per call."""
    await asyncio.sleep(0)
    await bus.drain()
    await service.recorder.drain()
    wallboard.publish()
    while not watcher.queue.empty():
        watcher.queue.get_nowait()


def _mail(n: int, rng: random.Random, customers: int) -> bytes:
    customer = rng.randrange(customers)
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Покупатель {customer} <customer{customer}@example.ru>"
    message["To"] = "Магазин <support@shop.example>"
    message["Date"] = format_datetime(START + DAY * n / 100_000)
    message["Message-ID"] = f"<day-{n}@example.ru>"
    if n >= customers and rng.random() < 0.33:  # a reply to this customer's earlier mail
        message["Subject"] = "Re: Заказ"
        message["In-Reply-To"] = f"<day-{n - customers}@example.ru>"
    else:
        message["Subject"] = f"Заказ {10_000 + n}"
    message.set_content(f"Где мой заказ №{10_000 + n}? Жду уже неделю.\n\n--\nС уважением")
    return message.as_bytes()


async def replay_mail(
    sessions: async_sessionmaker[AsyncSession],
    data_dir: Path,
    mails: int,
    phase: int,
    batch: int = 50,
    report: Callable[[Phase], None] = lambda _: None,
) -> list[Phase]:
    """Store `mails` customer mails in batches; measure after every `phase` mails."""
    if phase % batch:
        raise ValueError(f"a phase ({phase}) must be a whole number of batches ({batch})")
    settings = Settings(data_dir=data_dir, smtp_from="Магазин <support@shop.example>")
    ingestor, rng, phases = EmailIngestor(settings), random.Random(5), []
    customers = max(mails // 10, 1)
    for first in range(0, mails, batch):
        chunk = [(_mail(n, rng, customers), "INBOX") for n in range(first, first + batch)]
        await ingestor.store_batch(sessions, chunk)
        done = first + batch
        if done % phase == 0:
            phases.append(_measure(done))
            report(phases[-1])
    return phases


def growth_per_phase(phases: list[Phase]) -> float:
    """KiB per phase: the median of the growth from one phase to the next, after the first
    phase (warm-up). A leak shows in every step; a table that doubles once (a cache filling,
    the interpreter's dict of interned strings resizing) in one step only."""
    steps = [b.traced_kib - a.traced_kib for a, b in itertools.pairwise(phases[1:])]
    return statistics.median(steps)

"""A day of calls and of customer mail replayed at speed keeps memory flat: the Python memory
still alive after each phase (tracemalloc, after a full collection) shows no growth trend per
call or per mail beyond a generous bound. bench/memory.py runs the same at a bigger size and
prints the figures."""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from tests.reliability.dayreplay import Phase, growth_per_phase, replay_calls, replay_mail

PHASES = 6
PER_PHASE = 100
# A leak of a call's or a mail's objects costs several KiB each; caches that fill up while
# warming (statements, compiled queries) cost far less per item and stop growing.
BOUND_KIB_PER_ITEM = 1.5


@pytest.fixture
def traced() -> Iterator[None]:
    logging.disable(logging.WARNING)  # per-call warnings (no agent user) would be kept by caplog
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()
        logging.disable(logging.NOTSET)


def _verdict(phases: list[Phase], what: str) -> None:
    per_item = growth_per_phase(phases) / PER_PHASE
    figures = ", ".join(f"{p.done}: {p.traced_kib:.0f} KiB" for p in phases)
    assert len(phases) == PHASES, figures
    assert per_item < BOUND_KIB_PER_ITEM, f"{per_item:.2f} KiB more per {what}: {figures}"


async def test_a_day_of_calls_keeps_memory_flat(
    database: tuple[str, async_sessionmaker[AsyncSession]], traced: None
) -> None:
    url, sessions = database
    phases = await replay_calls(sessions, Settings(database_url=url), PHASES * PER_PHASE, PER_PHASE)
    _verdict(phases, "call")


async def test_a_day_of_mail_keeps_memory_flat(
    database: tuple[str, async_sessionmaker[AsyncSession]], traced: None, tmp_path: Path
) -> None:
    _, sessions = database
    phases = await replay_mail(sessions, tmp_path, PHASES * PER_PHASE, PER_PHASE)
    _verdict(phases, "mail")

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.defaults import install_default_rules
from callcenter.automation.engine import Engine
from callcenter.automation.timers import TimerWorker
from tests.automation.helpers import Clock, config


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def engine(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> Engine:
    """The engine with the default rules installed (the test database is emptied per test)."""
    async with sessions() as session, session.begin():
        await install_default_rules(session)
    return Engine(sessions, config(), now=clock)


@pytest.fixture
def worker(sessions: async_sessionmaker[AsyncSession], engine: Engine, clock: Clock) -> TimerWorker:
    return TimerWorker(sessions, engine.timer_handlers, now=clock)

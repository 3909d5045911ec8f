"""The web fixtures (running app, staff, visitors, Chromium) and the hand-made data set,
refreshed, for the analytics tests."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.analytics.refresh import Refresher
from callcenter.models import User
from tests.analytics.dataset import Dataset, make
from tests.web.conftest import (  # noqa: F401  (fixtures)
    app,
    browser,
    browser_page,
    server,
    signed_in,
    staff,
    visitor,
)


@pytest.fixture
async def data(
    sessions: async_sessionmaker[AsyncSession],
    staff: dict[str, User],  # noqa: F811  (the fixture above)
) -> tuple[Dataset, Refresher]:
    async with sessions() as db, db.begin():
        made = await make(db, staff)
    refresher = Refresher(sessions, "Europe/Moscow")
    await refresher.refresh()
    return made, refresher

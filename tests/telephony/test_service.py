from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.service import queue_settings
from callcenter.channels.telephony.state import QueueSettings
from callcenter.models import Queue


async def test_service_level_settings_come_from_the_queues_table(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            Queue(name="support", service_level_seconds=30, abandoned_in_service_level=True)
        )
        session.add(Queue(name="sales", service_level_seconds=15))
    assert await queue_settings(sessions) == {
        "support": QueueSettings(service_level_seconds=30, abandoned_in_service_level=True),
        "sales": QueueSettings(service_level_seconds=15, abandoned_in_service_level=False),
    }

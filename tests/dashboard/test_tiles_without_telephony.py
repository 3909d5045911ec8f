"""A shop without Asterisk: ``callcenter serve`` still shows the supervisor the omnichannel
tiles (Telegram and email waiting, breaches of the promise, callbacks due), live over /events,
and says that telephony is off."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.config import load_settings
from callcenter.models import Channel, Customer, Role, Ticket, TicketStatus, User, utcnow
from callcenter.passwords import hash_password
from callcenter.serve import serve
from tests.scale.processes import next_event
from tests.web.helpers import HTML, Visitor


async def test_the_tiles_show_without_telephony(
    database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions() as db, db.begin():
        db.add(
            User(
                username="sveta",
                role=Role.SUPERVISOR,
                password_hash=hash_password("password-sveta"),
            )
        )
        ann, bob = Customer(display_name="Ann"), Customer(display_name="Bob")
        db.add_all([ann, bob])
        await db.flush()
        three_hours_ago = utcnow() - timedelta(hours=3)
        db.add_all(
            [
                Ticket(customer_id=ann.id, channel=Channel.TELEGRAM, created_at=three_hours_ago,
                       status=TicketStatus.OPEN),
                Ticket(customer_id=bob.id, channel=Channel.EMAIL, created_at=utcnow(),
                       status=TicketStatus.NEW),
            ]
        )  # fmt: skip
    port = free_port()
    settings = load_settings(
        {
            "CALLCENTER_DATABASE_URL": database_url,
            "CALLCENTER_DATA_DIR": str(tmp_path),
            "CALLCENTER_SESSION_KEY": "tiles-test-session-key-" + "t" * 32,
            "CALLCENTER_AGI_PORT": str(free_port()),
        }
    )
    assert not settings.ami_password and not settings.ami_servers
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop))
    sveta = Visitor(URL(f"http://127.0.0.1:{port}"))
    try:
        async with asyncio.timeout(30):
            while True:
                assert not task.done(), task
                try:
                    if (await sveta.login("sveta")).status == 303:
                        break
                except OSError:
                    pass
                await asyncio.sleep(0.2)
        page = await (await sveta.get("/supervisor", headers=HTML)).text()
        assert 'id="wb-tiles"' in page and 'id="wb-off"' in page
        assert "/static/js/wallboard.js" in page
        stream = await sveta.get("/events")
        async with asyncio.timeout(30):
            while (board := await next_event(stream, "wallboard"))["tiles"] is None:
                pass
        tiles = board["tiles"]
        assert (tiles["telegram"]["count"], tiles["email"]["count"]) == (1, 1)
        assert tiles["breaching"]["count"] == 1  # the Telegram message, 3 h > the 2 h promise
        assert board["queues"] == [] and board["agents"] == []
    finally:
        await sveta.close()
        stop.set()
        await asyncio.wait_for(task, 20)

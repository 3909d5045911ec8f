"""Presence across web processes: two real ``callcenter serve`` processes on one PostgreSQL.
A supervisor on the first sees an agent online whose stream is open on the second, and offline
once it closes; without telephony anywhere each process shows its own tiles. The announcement
logic itself (expiry, a process leaving, telephony elsewhere) against a hub of its own."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from callcenter.models import Role
from callcenter.web.presence import Presence
from callcenter.web.streams import Hub
from tests.scale.processes import next_event, serve_process
from tests.telephony.product import add_staff
from tests.web.helpers import HTML, Visitor


@pytest.fixture
async def staff(database: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    """Agent anna and supervisor sveta."""
    _, sessions = database
    await add_staff(sessions, "anna", Role.AGENT)
    await add_staff(sessions, "sveta", Role.SUPERVISOR)


async def presence_of_anna(sveta: Visitor) -> str:
    page = await (await sveta.get("/supervisor", headers=HTML)).text()
    row = re.search(r"<td>anna</td>.*?</tr>", page, re.S)
    assert row is not None, page
    return re.findall(r"<td>([^<]*)</td>", row.group(0))[-1]


async def until_presence(sveta: Visitor, expected: str, timeout: float = 20.0) -> None:
    seen = ""
    try:
        async with asyncio.timeout(timeout):
            while (seen := await presence_of_anna(sveta)) != expected:
                await asyncio.sleep(0.3)
    except TimeoutError:
        pytest.fail(f"anna shows {seen!r}, expected {expected!r}")


@pytest.mark.postgres
@pytest.mark.usefixtures("staff")
async def test_an_agent_online_on_one_process_shows_online_on_the_other(
    database, tmp_path: Path
) -> None:
    url, _ = database
    async with (
        serve_process(url, tmp_path / "a", {}) as first,
        serve_process(url, tmp_path / "b", {}) as second,
    ):
        sveta, anna = Visitor(URL(first.base)), Visitor(URL(second.base))
        try:
            assert (await sveta.login("sveta")).status == 303
            assert (await anna.login("anna")).status == 303
            await until_presence(sveta, "не в сети")
            stream = await anna.get("/events")
            assert stream.status == 200
            await until_presence(sveta, "в сети")
            stream.close()
            await until_presence(sveta, "не в сети")

            # No telephony anywhere: each process pushes the tiles to its own supervisors.
            board = await next_event(await sveta.get("/events"), "wallboard")
            assert board["tiles"] is not None and board["queues"] == []
        finally:
            await sveta.close()
            await anna.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_announcements_expire_and_leave() -> None:
    clock = Clock()
    hub, other_hub = Hub(), Hub()
    here = Presence(hub, telephony=False, ttl=30.0, clock=clock)
    there = Presence(other_hub, telephony=True, clock=clock)
    sent: list[dict] = []
    here.attach(sent.append)
    there.attach(here.receive)
    other_hub.connect(7, Role.AGENT, lambda: None)
    other_hub.connect(7, Role.AGENT, lambda: None)
    hub.connect(9, Role.SUPERVISOR, lambda: None)

    there.announce()
    assert sent[-1]["streams"] == {"9": 1}  # a new process is answered at once
    assert here.online() == {7, 9} and here.elsewhere(7) == 2
    assert here.telephony_elsewhere()
    assert here.publish_to_user(7, "card", {}) == 2  # none here, two there
    assert here.publish_board(Role.SUPERVISOR, "wallboard", {}) == 0  # the telephony one's

    clock.now += 31  # not renewed: the process is gone
    assert here.online() == {9} and not here.telephony_elsewhere()
    assert here.publish_board(Role.SUPERVISOR, "wallboard", {}) == 1
    there.announce()
    there.announce(gone=True)
    assert here.online() == {9}

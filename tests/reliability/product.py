"""`callcenter serve` in the test process against a load-test Asterisk, a signed-in supervisor
reading the wallboard from the event stream as the browser does, and Asterisk's own figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from callcenter.channels.telephony.ami import AmiClient
from callcenter.models import Role
from tests.reliability.callload import LoadPbx
from tests.telephony import product as telephony
from tests.web.helpers import Visitor


async def add_staff(sessions: async_sessionmaker[AsyncSession], pbx: LoadPbx) -> dict[str, int]:
    """Supervisor "sveta" and one agent user per load-test phone; endpoint -> user id."""
    await telephony.add_staff(sessions, "sveta", Role.SUPERVISOR)
    ids = {}
    for agent in pbx.agent_ports:
        endpoint = f"PJSIP/{agent}"
        ids[endpoint] = await telephony.add_staff(
            sessions, f"agent{agent}", Role.AGENT, endpoint, signs_in=False
        )
    return ids


def serving(database_url: str, pbx: LoadPbx, data_dir: Path) -> AbstractAsyncContextManager[str]:
    """Serve (web, AMI, FastAGI lookups, wallboard) until the block ends; yields the base URL."""
    return telephony.running_product(
        database_url, pbx, data_dir, agi_port=pbx.process.settings.agi_port
    )


class BoardWatch:
    """The latest wallboard pushed to a signed-in supervisor's /events stream."""

    def __init__(self, visitor: Visitor) -> None:
        self.visitor = visitor
        self.latest: dict[str, Any] | None = None
        self.pushes = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BoardWatch:
        self._task = asyncio.create_task(self._read())
        async with asyncio.timeout(15):
            while self.latest is None:
                assert not self._task.done(), self._task
                await asyncio.sleep(0.1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        async with self.visitor.http.get(
            self.visitor.url("/events"), timeout=aiohttp.ClientTimeout(total=None)
        ) as response:
            assert response.status == 200, response.status
            event = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "wallboard":
                    self.latest = json.loads(line.removeprefix("data: "))
                    self.pushes += 1

    def queue(self, name: str) -> dict[str, Any]:
        assert self.latest is not None
        [found] = [q for q in self.latest["queues"] if q["name"] == name]
        return found


async def supervisor(base: str) -> Visitor:
    visitor = Visitor(URL(base))
    response = await visitor.login("sveta")
    assert response.status == 303, response.status
    return visitor


def ami_client(pbx: LoadPbx) -> AmiClient:
    settings = pbx.process.settings
    return AmiClient("127.0.0.1", settings.ami_port, settings.ami_username, settings.ami_secret)


async def asterisk_figures(ami: AmiClient, queue: str) -> dict[str, int]:
    """QueueSummary's live figures and QueueStatus's counters since Asterisk started."""
    summary = await ami.send_action({"Action": "QueueSummary", "Queue": queue}, timeout=15)
    [live] = [e for e in summary.events if e.get("Event") == "QueueSummary"]
    status = await ami.send_action({"Action": "QueueStatus", "Queue": queue}, timeout=15)
    [params] = [e for e in status.events if e.get("Event") == "QueueParams"]
    return {
        "waiting": int(live["Callers"]),
        "logged_in": int(live["LoggedIn"]),
        "available": int(live["Available"]),
        "answered": int(params["Completed"]),
        "abandoned": int(params["Abandoned"]),
    }


def board_figures(board: BoardWatch, queue: str) -> dict[str, int]:
    shown = board.queue(queue)
    keys = ("waiting", "logged_in", "available", "answered", "abandoned")
    return {key: shown[key] for key in keys}

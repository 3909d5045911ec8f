"""The event fan-out between web processes over the machine's real PostgreSQL: two hubs, each
with its own LISTEN connection, as two web processes would have."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from callcenter.models import Role, User
from callcenter.pgnotify import PgNotify, asyncpg_dsn
from callcenter.web.fanout import Fanout, Reassembler, close_inactive, split
from callcenter.web.streams import Connection, Hub
from tests.dbs import postgres_database
from tests.scale.processes import listening, terminate_backend

pytestmark = pytest.mark.postgres


@dataclass
class Process:
    name: str
    hub: Hub
    notify: PgNotify
    resyncs: list[int]


@asynccontextmanager
async def process(url: str, name: str) -> AsyncIterator[Process]:
    hub = Hub()
    resyncs: list[int] = []

    async def resync() -> None:
        resyncs.append(1)

    fanout = Fanout(hub, resync)
    notify = PgNotify(
        asyncpg_dsn(url), fanout.incoming, fanout.resynced, keepalive=1.0, application_name=name
    )
    fanout.attach(notify.send)
    stop = asyncio.Event()
    task = asyncio.create_task(notify.run(stop))
    try:
        await listening(url, name)
        yield Process(name, hub, notify, resyncs)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def connect(hub: Hub, user_id: int, role: Role = Role.AGENT) -> Connection:
    return hub.connect(user_id, role, lambda: None)


async def frames(conn: Connection, n: int, timeout: float = 20) -> list[dict[str, object]]:
    got = []
    async with asyncio.timeout(timeout):
        while len(got) < n:
            frame = (await conn.queue.get()).decode()
            if not frame:
                got.append({"closed": True})
                continue
            event, data = frame.strip().split("\n")
            got.append({"event": event.removeprefix("event: "), **json.loads(data[6:])})
    return got


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with postgres_database("cc_fanout") as database_url:
        yield database_url


def test_a_message_is_split_under_the_payload_limit_and_put_back_together() -> None:
    body = json.dumps({"text": "Заказ №12345 ещё не пришёл 🙂 " * 900}, ensure_ascii=False)
    parts = split(7, body)
    assert len(parts) > 3
    assert all(len(p.encode()) < 8000 for p in parts)
    again = Reassembler()
    assert [again.add(42, p) for p in parts[:-1]] == [None] * (len(parts) - 1)
    assert again.add(42, parts[-1]) == body
    # A part lost (the connection dropped mid-message): the message is dropped, not garbled.
    assert again.add(42, parts[0]) is None and again.add(42, parts[2]) is None
    assert again.add(42, parts[-1]) is None


async def test_a_large_pop_raised_in_one_process_reaches_the_agent_connected_to_another(
    url: str,
) -> None:
    async with process(url, "cc-a") as a, process(url, "cc-b") as b:
        anna_on_a, anna_on_b, boris_on_b = connect(a.hub, 1), connect(b.hub, 1), connect(b.hub, 2)
        history = ["Мой заказ №12345 не пришёл <script>x</script>"] * 600  # ~30 kB
        assert a.hub.publish_to_user(1, "card", {"id": "pop:1", "history": history}) == 1

        [on_b] = await frames(anna_on_b, 1)
        assert on_b == {"event": "card", "id": "pop:1", "history": history}
        [on_a] = await frames(anna_on_a, 1)
        assert on_a["id"] == "pop:1"
        # The process's own notification is not delivered a second time, nor to others.
        b.hub.publish_to_user(2, "card", {"id": "pop:2"})
        assert [f["id"] for f in await frames(boris_on_b, 1)] == ["pop:2"]
        await asyncio.sleep(1.0)
        assert anna_on_a.queue.empty() and anna_on_b.queue.empty() and boris_on_b.queue.empty()


async def test_wallboard_and_closing_a_users_streams_cross_processes(url: str) -> None:
    async with process(url, "cc-a") as a, process(url, "cc-b") as b:
        supervisor_on_b, agent_on_b = connect(b.hub, 5, Role.SUPERVISOR), connect(b.hub, 6)
        a.hub.publish_to_role(Role.SUPERVISOR, "wallboard", {"queues": ["support"]})
        assert await frames(supervisor_on_b, 1) == [{"event": "wallboard", "queues": ["support"]}]

        a.hub.close_user(6)  # deactivated by an admin on process a
        assert await frames(agent_on_b, 1) == [{"closed": True}]
        assert agent_on_b.closed and b.hub.connections(6) == []


async def test_after_the_listen_connection_is_killed_it_recovers_and_resyncs(url: str) -> None:
    async with process(url, "cc-a") as a, process(url, "cc-b") as b:
        anna_on_b, boris_on_a = connect(b.hub, 1), connect(a.hub, 2)
        old = await listening(url, "cc-b")
        await terminate_backend(url, old)
        # Published by b while its connection is down: kept and sent once it is back.
        b.hub.publish_to_user(2, "card", {"id": "pop:while-down"})
        await listening(url, "cc-b", other_than=old)
        async with asyncio.timeout(10):
            while b.resyncs != [1]:
                await asyncio.sleep(0.05)

        a.hub.publish_to_user(1, "card", {"id": "pop:after"})
        assert [f["id"] for f in await frames(anna_on_b, 1)] == ["pop:after"]
        assert [f["id"] for f in await frames(boris_on_a, 1)] == ["pop:while-down"]


async def test_the_resync_ends_the_streams_of_users_deactivated_meanwhile(sessions) -> None:
    async with sessions() as db, db.begin():
        anna = User(username="anna", role=Role.AGENT, password_hash="-")
        gone = User(username="gone", role=Role.AGENT, password_hash="-", active=False)
        db.add_all([anna, gone])
    hub = Hub()
    kept, ended = connect(hub, anna.id), connect(hub, gone.id)
    watched = hub.connect(anna.id, Role.AGENT, lambda: None, viewer_id=gone.id)
    await close_inactive(hub, sessions)
    assert not kept.closed and ended.closed and watched.closed
    assert hub.connections() == [kept]

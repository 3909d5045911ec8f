"""Event streams: each connection gets only its own user's events, and a stuck one is dropped."""

from __future__ import annotations

import asyncio
import json

import pytest

from callcenter.models import Role
from callcenter.web.keys import HUB
from callcenter.web.streams import QUEUE_SIZE, Hub, encode_event


async def _next_event(response) -> tuple[str, dict]:
    event = ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            return event, json.loads(line[6:])


async def _wait_connected(hub: Hub, user_id: int, count: int = 1) -> None:
    for _ in range(200):
        if len(hub.connections(user_id)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"user {user_id} never connected")


async def test_an_agents_stream_carries_only_that_agents_events(signed_in, app, staff) -> None:
    hub = app[HUB]
    anna, boris = staff["anna"], staff["boris"]
    anna_stream = await (await signed_in("anna")).get("/events")
    boris_stream = await (await signed_in("boris")).get("/events")
    await _wait_connected(hub, anna.id)
    await _wait_connected(hub, boris.id)
    hub.publish_to_user(boris.id, "card", {"title": "для Бориса"})
    hub.publish_to_role(Role.SUPERVISOR, "dashboard", {"secret": "для супервизора"})
    hub.publish_to_user(anna.id, "card", {"title": "для Анны"})
    assert await _next_event(anna_stream) == ("card", {"title": "для Анны"})
    assert await _next_event(boris_stream) == ("card", {"title": "для Бориса"})
    anna_stream.close()
    boris_stream.close()


async def test_a_supervisor_gets_role_events_and_can_listen_to_an_agent(
    signed_in, app, staff
) -> None:
    hub = app[HUB]
    supervisor = await signed_in("sveta")
    own = await supervisor.get("/events")
    listening = await supervisor.get(f"/events/users/{staff['anna'].id}")
    await _wait_connected(hub, staff["sveta"].id)
    await _wait_connected(hub, staff["anna"].id)
    hub.publish_to_role(Role.SUPERVISOR, "dashboard", {"waiting": 3})
    hub.publish_to_user(staff["anna"].id, "card", {"title": "Иван"})
    assert await _next_event(own) == ("dashboard", {"waiting": 3})
    assert await _next_event(listening) == ("card", {"title": "Иван"})
    own.close()
    listening.close()


async def test_a_browser_that_stops_reading_is_disconnected(signed_in, app, staff) -> None:
    hub = app[HUB]
    agent = await signed_in("anna")
    stream = await agent.get("/events")
    await _wait_connected(hub, staff["anna"].id)
    # never read from `stream`: socket buffers fill, then the bounded queue, then the drop
    payload = {"filler": "ж" * 8000}
    sent = 0
    while hub.connections(staff["anna"].id):
        hub.publish_to_user(staff["anna"].id, "card", payload)
        sent += 1
        await asyncio.sleep(0)
        if sent > 20_000:
            pytest.fail("a stream that is not read was never dropped")
    assert sent > QUEUE_SIZE
    stream.close()


def test_a_full_queue_is_dropped_at_once_and_freed() -> None:
    hub = Hub()
    aborted: list[int] = []
    conn = hub.connect(7, Role.AGENT, lambda: aborted.append(7))
    for i in range(QUEUE_SIZE + 1):
        hub.publish_to_user(7, "card", {"n": i})
    assert aborted == [7]
    assert hub.connections() == []
    assert conn.queue.qsize() == 1  # only the close marker is left


def test_event_names_cannot_inject_frames() -> None:
    with pytest.raises(ValueError):
        encode_event("card\ndata: x", {})
    frame = encode_event("card", {"title": "a\n\nevent: evil\ndata: {}"})
    assert frame.count(b"\n\n") == 1

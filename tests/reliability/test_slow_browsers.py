"""Event streams to browsers that stopped reading are bounded: while the wallboard is pushed to
20 stuck supervisor tabs (raw sockets that never read) and one tab that reads, the server's
memory stays within the queue bound, the stuck tabs are dropped, the memory is given back,
and the reading tab gets every push."""

from __future__ import annotations

import asyncio
import gc
import socket
import tracemalloc

from callcenter.models import Role
from callcenter.web.keys import HUB
from callcenter.web.streams import QUEUE_SIZE

STUCK = 20
PUSHES = 2_000
BOARD = {
    "queues": [{"name": f"q{n}", "callers": ["Иван Петров · +79161234567"] * 8} for n in range(8)]
}


def _stuck_tab(port: int, cookie: str) -> socket.socket:
    """A browser tab that asks for its event stream and then never reads a byte."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    request = f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
    sock.sendall(request.encode())
    return sock


async def _until(check, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_stuck_tabs_hold_bounded_memory_and_are_dropped_while_a_reading_tab_gets_all(
    signed_in, app, server, staff
) -> None:
    hub, sveta = app[HUB], staff["sveta"]
    supervisor = await signed_in("sveta")
    cookie = "; ".join(f"{c.key}={c.value}" for c in supervisor.http.cookie_jar)
    reading = await supervisor.get("/events")
    received = 0

    async def read() -> None:
        nonlocal received
        async for line in reading.content:
            received += line.startswith(b"event: wallboard")

    reader = asyncio.create_task(read())
    tabs = [_stuck_tab(server.port, cookie) for _ in range(STUCK)]
    await _until(lambda: len(hub.connections(sveta.id)) == STUCK + 1, "every tab connected")

    tracemalloc.start()
    try:
        before = _traced()
        tracemalloc.reset_peak()
        for n in range(PUSHES):
            hub.publish_to_role(Role.SUPERVISOR, "wallboard", BOARD | {"n": n})
            if n % 20 == 0:  # as fast as the reading tab reads, at most 64 pushes behind
                await _until(lambda n=n: received >= n - 64, "the reading tab keeps up")
        await _until(lambda: received == PUSHES, f"all {PUSHES} pushes read ({received})")
        peak = tracemalloc.get_traced_memory()[1] - before
        after = _traced() - before
        left = hub.connections(sveta.id)
    finally:
        tracemalloc.stop()
        for tab in tabs:
            tab.close()
        reader.cancel()
        reading.close()

    assert len(left) == 1, f"{len(left) - 1} stuck tabs were never dropped"
    frame = len(str(BOARD)) * 2
    bound = QUEUE_SIZE * frame + STUCK * (256 * 1024 + frame) + 4 * 1024 * 1024
    assert peak < bound, f"peak {peak // 1024} KiB over the bound {bound // 1024} KiB"
    assert after < 1024 * 1024, f"{after // 1024} KiB still held after the stuck tabs were dropped"

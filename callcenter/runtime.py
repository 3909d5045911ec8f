"""Running the product's long-lived parts side by side in one process, each supervised.

A component is a coroutine function taking a stop event. If it crashes it is logged, reported
on /status, and started again after a growing pause; the others keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from callcenter import health

log = logging.getLogger(__name__)

Runner = Callable[[asyncio.Event], Awaitable[None]]
MAX_PAUSE = 30.0


@dataclass(frozen=True)
class Component:
    name: str
    run: Runner
    health_name: str | None = None
    """The /status entry to mark failing when this component crashes."""


async def supervise(component: Component, stop: asyncio.Event) -> None:
    """Run one component until ``stop``, restarting it with backoff when it fails."""
    pause = 1.0
    while not stop.is_set():
        try:
            await component.run(stop)
            if stop.is_set():
                return
            log.warning("%s returned without being asked to stop; restarting", component.name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s crashed; restarting in %.0f s", component.name, pause)
            if component.health_name:
                health.report_failure(component.health_name, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, MAX_PAUSE)


async def run_all(components: list[Component], stop: asyncio.Event) -> None:
    """Supervise every component until ``stop`` is set, then wait for all to finish."""
    tasks = [
        asyncio.create_task(supervise(c, stop), name=f"component:{c.name}") for c in components
    ]
    try:
        await stop.wait()
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=10)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

import asyncio

from callcenter import health
from callcenter.runtime import Component, run_all


async def test_a_crashing_component_is_restarted_and_reported_while_others_run() -> None:
    stop = asyncio.Event()
    starts: list[str] = []
    ticks = 0

    async def flaky(stop: asyncio.Event) -> None:
        starts.append("flaky")
        if len(starts) == 1:
            raise ConnectionError("AMI refused")
        await stop.wait()

    async def steady(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.05)

    async def stop_later() -> None:
        while len(starts) < 2:
            await asyncio.sleep(0.05)
        stop.set()

    await asyncio.gather(
        run_all([Component("flaky", flaky, "ami"), Component("steady", steady)], stop),
        stop_later(),
    )
    assert starts == ["flaky", "flaky"]
    assert ticks >= 10  # kept running through the other's crash and 1 s pause
    ami = next(c for c in health.registry.snapshot() if c.name == "ami")
    assert ami.state is health.State.FAILING and "AMI refused" in ami.last_error

"""100 concurrent calls through the real Asterisk into support and sales, 20 sipp agents
answering, then 10 callers giving up in a queue whose agents are all paused. Afterwards every
call has exactly one record with the right queue, outcome, agent and times, and the
supervisor's wallboard shows what Asterisk's QueueSummary and QueueStatus say."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import Call, CallOutcome
from tests.reliability.callload import (
    LoadPbx,
    caller_number,
    load_pbx,
    start_abandoning,
    start_agents,
    start_callers,
)
from tests.reliability.product import (
    BoardWatch,
    add_staff,
    ami_client,
    asterisk_figures,
    board_figures,
    serving,
    supervisor,
)

pytestmark = pytest.mark.asterisk

PER_QUEUE = 50  # 100 calls at once
TALK_MS = 1500
ABANDONING = 10


async def record_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Call)) or 0


async def test_100_concurrent_calls_are_each_recorded_once_and_the_wallboard_equals_asterisk(
    database: tuple[str, async_sessionmaker[AsyncSession]], tmp_path: Path
) -> None:
    url, sessions = database
    async with load_pbx(tmp_path) as pbx:
        agent_ids = await add_staff(sessions, pbx)
        async with serving(url, pbx, tmp_path / "data") as base:
            peak = await _place_calls(sessions, pbx, base, tmp_path)

    assert peak >= 40, f"at most {peak} callers waited at once: the calls were not concurrent"
    async with sessions() as session:
        records = list(await session.scalars(select(Call)))
    total = 2 * PER_QUEUE + ABANDONING
    assert len(records) == total
    assert len({r.linkedid for r in records}) == total
    answered = [r for r in records if r.outcome is CallOutcome.ANSWERED]
    by_number = Counter(r.caller_number for r in answered)
    expected = {caller_number(q, i) for q in ("support", "sales") for i in range(PER_QUEUE)}
    assert set(by_number) == expected and set(by_number.values()) == {1}
    for record in answered:
        queue = "support" if record.caller_number.startswith("+7916") else "sales"
        assert record.queue == queue, record.__dict__
        assert record.agent_id == agent_ids[record.agent_endpoint], record.__dict__
        assert record.answered_at is not None and record.ended_at is not None
        assert record.started_at <= record.answered_at <= record.ended_at
        assert 1 <= record.talk_seconds <= 4, record.__dict__
        waited = (record.answered_at - record.started_at).total_seconds()
        assert abs(record.wait_seconds - waited) <= 2, record.__dict__
    handled = Counter(r.agent_endpoint for r in answered)
    assert len(handled) == len(pbx.agent_ports), f"some agents took no call: {handled}"
    gave_up = [r for r in records if r.outcome is not CallOutcome.ANSWERED]
    assert len(gave_up) == ABANDONING
    for record in gave_up:
        assert (record.outcome, record.queue, record.agent_endpoint, record.answered_at) == (
            CallOutcome.ABANDONED,
            "sales",
            None,
            None,
        )
        assert 2 <= record.wait_seconds <= 6, record.__dict__


async def _place_calls(
    sessions: async_sessionmaker[AsyncSession], pbx: LoadPbx, base: str, work: Path
) -> int:
    """Run the calls; check the wallboard against Asterisk; the most callers seen waiting."""
    ami = ami_client(pbx)
    await ami.start()
    visitor = await supervisor(base)
    agents = await start_agents(work, pbx, TALK_MS)
    try:
        async with BoardWatch(visitor) as board:
            callers = [
                await start_callers(work, pbx, queue, PER_QUEUE, rate=2 * PER_QUEUE)
                for queue in ("support", "sales")
            ]
            peak = 0
            while any(c.process.returncode is None for c in callers):
                peak = max(peak, sum(board.queue(q)["waiting"] for q in ("support", "sales")))
                await asyncio.sleep(0.2)
            for sipp in callers:
                code, report = await sipp.finish(timeout=30)
                assert code == 0, report

            for interface in pbx.agent_ports:
                response = await ami.send_action(
                    {"Action": "QueuePause", "Queue": "sales",
                     "Interface": f"PJSIP/{interface}", "Paused": "true"}
                )  # fmt: skip
                assert response.ok, response.headers
            leaving = await start_abandoning(work, pbx, "sales", ABANDONING)
            code, report = await leaving.finish(timeout=60)
            assert code == 0, report

            async with asyncio.timeout(60):
                while await record_count(sessions) < 2 * PER_QUEUE + ABANDONING:
                    await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # a moment more for a duplicate to show
            for queue in ("support", "sales"):
                await _agrees(board, ami, queue)
    finally:
        for sipp in agents:
            await sipp.stop()
        await visitor.close()
        await ami.stop()
    return peak


async def _agrees(board: BoardWatch, ami, queue: str) -> None:  # type: ignore[no-untyped-def]
    """The wallboard shows Asterisk's figures (each read afresh, within a few pushes)."""
    seen: list[tuple[dict[str, int], dict[str, int]]] = []
    try:
        async with asyncio.timeout(5):
            while True:
                truth, shown = await asterisk_figures(ami, queue), board_figures(board, queue)
                seen.append((truth, shown))
                if truth == shown:
                    break
                await asyncio.sleep(0.3)
    except TimeoutError:
        pytest.fail(f"{queue}: wallboard disagrees with Asterisk (asterisk, board): {seen[-3:]}")
    answered = PER_QUEUE
    abandoned = ABANDONING if queue == "sales" else 0
    assert (truth["answered"], truth["abandoned"]) == (answered, abandoned), truth

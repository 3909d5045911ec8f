"""`callcenter serve` killed with SIGKILL while five calls are being talked through the real
Asterisk, and started again before they end: each call gets exactly one record, answered by
its agent, with its talk time (the new process learns the calls from Asterisk at login)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import Call, CallOutcome
from tests.dbs import postgres_database
from tests.reliability.callload import LoadPbx, load_pbx, start_agents, start_callers
from tests.reliability.processes import Processes, kill, until
from tests.reliability.product import add_staff

pytestmark = pytest.mark.asterisk

CALLS = 5
TALK_MS = 15_000


async def _healthy(base: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def _settings(url: str, pbx: LoadPbx, data_dir: Path) -> dict[str, str]:
    pbx_settings = pbx.process.settings
    return {
        "database_url": url, "data_dir": str(data_dir),
        "ami_port": str(pbx_settings.ami_port), "ami_user": pbx_settings.ami_username,
        "ami_password": pbx_settings.ami_secret, "agi_port": str(pbx_settings.agi_port),
        "session_key": "kill-session-key-" + "x" * 32,
    }  # fmt: skip


async def test_serve_killed_mid_call_and_restarted_records_each_call_once(tmp_path: Path) -> None:
    async with postgres_database("cc_faults") as url:
        await upgrade_async(url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            async with load_pbx(tmp_path, agents=CALLS) as pbx:
                agent_ids = await add_staff(sessions, pbx)
                records = await _calls_across_a_kill(
                    sessions, pbx, _settings(url, pbx, tmp_path), tmp_path
                )
        finally:
            await engine.dispose()

    assert len(records) == CALLS, [r.__dict__ for r in records]
    assert len({r.linkedid for r in records}) == CALLS
    for record in records:
        assert record.outcome is CallOutcome.ANSWERED, record.__dict__
        assert record.agent_id == agent_ids[record.agent_endpoint], record.__dict__
        assert TALK_MS / 1000 - 3 <= record.talk_seconds <= TALK_MS / 1000 + 3, record.__dict__


async def _calls_across_a_kill(
    sessions: async_sessionmaker[AsyncSession], pbx: LoadPbx, settings: dict[str, str], work: Path
) -> list[Call]:
    processes = Processes(work)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    agents = await start_agents(work, pbx, TALK_MS)
    try:
        serve = await processes.start(["serve", "--port", str(port)], settings)
        await until(lambda: _healthy(base), "serve up", timeout=120)
        await asyncio.sleep(3)  # logged in to AMI
        callers = await start_callers(work, pbx, "support", CALLS, rate=CALLS)
        await asyncio.sleep(5)  # every call answered and talking

        await kill(serve)
        serve = await processes.start(["serve", "--port", str(port)], settings)
        await until(lambda: _healthy(base), "serve up again", timeout=120)

        code, report = await callers.finish(timeout=120)
        assert code == 0, report

        async def recorded() -> bool:
            async with sessions() as session:
                return (await session.scalar(select(func.count()).select_from(Call)) or 0) >= CALLS

        await until(recorded, f"{CALLS} calls recorded", timeout=60)
        await asyncio.sleep(2)  # a moment more for a duplicate to show
        await processes.stop(serve)
    finally:
        for agent in agents:
            await agent.stop()
        await processes.close()
    async with sessions() as session:
        return list(await session.scalars(select(Call)))

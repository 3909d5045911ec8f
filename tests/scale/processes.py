"""Real ``callcenter serve`` processes on one PostgreSQL database, and their event streams."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.pgnotify import asyncpg_dsn
from tests.telephony.product import healthy

SESSION_KEY = "scale-test-session-key-" + "x" * 32


@dataclass
class Served:
    base: str
    pid: int
    log: Path

    @property
    def application_name(self) -> str:
        return f"callcenter-fanout:{self.pid}"


@asynccontextmanager
async def serve_process(
    database_url: str, data_dir: Path, extra_env: dict[str, str]
) -> AsyncIterator[Served]:
    """``python -m callcenter.cli serve`` on a free port, until the block ends."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")},
        "CALLCENTER_DATABASE_URL": database_url,
        "CALLCENTER_DATA_DIR": str(data_dir),
        "CALLCENTER_SESSION_KEY": SESSION_KEY,
        "CALLCENTER_AGI_PORT": str(free_port()),
        **extra_env,
    }
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callcenter.cli", "serve", "--port", str(port),
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", process.pid, log)
    try:
        async with asyncio.timeout(40):
            while not await healthy(served.base):
                assert process.returncode is None, log.read_text()
                await asyncio.sleep(0.2)
        await listening(database_url, served.application_name)
        yield served
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 20)


async def listening(database_url: str, application_name: str, other_than: int | None = None) -> int:
    """The pid of the process's fan-out backend once it has issued LISTEN."""
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with asyncio.timeout(30):
            while True:
                pid = await admin.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
                    " AND pid IS DISTINCT FROM $2 AND query <> ''",
                    application_name,
                    other_than,
                )
                if pid is not None:
                    return pid
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def terminate_backend(database_url: str, pid: int) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def next_event(stream: aiohttp.ClientResponse, name: str, timeout: float = 30) -> dict:
    """The data of the next ``name`` event on an SSE stream (others are skipped)."""
    event = ""
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.content.readline()).decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == name:
                return json.loads(line[6:])

"""A PostgreSQL server of the test's own (initdb + pg_ctl on a free port), so that a test may
crash and restart it. The machine's PostgreSQL on 5432 is shared and never touched.

As root, the server runs as the unprivileged ``postgres`` user (PostgreSQL refuses root), in a
directory of its own outside the root-only pytest temp folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from callcenter.channels.telephony.pbxconfig import free_port

BIN = Path(os.environ.get("CALLCENTER_PG_BIN", "/usr/lib/postgresql/15/bin"))
OWNER = "postgres"


class PrivatePostgres:
    def __init__(self) -> None:
        if not (BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL binaries not found in {BIN} (set CALLCENTER_PG_BIN)")
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="cc-private-pg-"))
        self.data = self.home / "data"
        self.log = self.home / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.home, OWNER, OWNER)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/callcenter"

    async def _run(self, *argv: str) -> None:
        if os.geteuid() == 0:
            argv = ("runuser", "-u", OWNER, "--", *argv)
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.home,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        if process.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed:\n{out.decode(errors='replace')}\n{log}")

    async def init(self) -> None:
        await self._run(
            str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        await self.start()
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await connection.execute("CREATE DATABASE callcenter")
        finally:
            await connection.close()

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off"
        await self._run(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    async def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: no shutdown checkpoint, every connection cut."""
        await self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    async def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            await self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


@contextlib.asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        await server.init()
        yield server
    finally:
        await server.remove()

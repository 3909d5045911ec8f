"""The product's own processes (`callcenter worker ...`, `callcenter serve`) for fault tests:
started from the installed console script with `CALLCENTER_*` settings, killed at will."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.models import Outbox, OutboxStatus

ROOT = Path(__file__).resolve().parents[2]
CALLCENTER = str(Path(sys.executable).parent / "callcenter")


class Processes:
    """Every process a test started, each with its log; `close()` leaves none running."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[asyncio.subprocess.Process, Path]] = []

    async def start(self, args: list[str], settings: dict[str, str]) -> asyncio.subprocess.Process:
        log = self.logs / f"process{len(self.started) + 1}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        env |= {f"CALLCENTER_{key.upper()}": value for key, value in settings.items()}
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                CALLCENTER, *args, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=out,
            )  # fmt: skip
        self.started.append((process, log))
        return process

    async def stop(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM and a clean exit (code 0) within 30 s."""
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            code = None
        assert code == 0, f"exit code {code}\n{self.log_of(process)}"

    def log_of(self, process: asyncio.subprocess.Process) -> str:
        [log] = [log for p, log in self.started if p is process]
        return log.read_text(errors="replace")[-3000:]

    async def close(self) -> None:
        for process, _ in self.started:
            await kill(process)


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL: no clean-up of any kind, as the OOM killer or a power cut would."""
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
    await process.wait()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


def all_sent(sessions: async_sessionmaker[AsyncSession]) -> Callable[[], Awaitable[bool]]:
    """A check for `until`: no outbox row is left unsent."""

    async def check() -> bool:
        async with sessions() as session:
            pending = select(func.count()).where(Outbox.status != OutboxStatus.SENT)
            return await session.scalar(pending) == 0

    return check

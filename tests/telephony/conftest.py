"""A real Asterisk (scripts/provision-asterisk), sipp phones and an AMI session for the tests.

Nothing here skips: without a provisioned Asterisk or sipp the fixtures raise and the tests
fail with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callcenter.channels.telephony.ami import AmiClient
from callcenter.channels.telephony.amiframes import AmiEvent
from callcenter.channels.telephony.pbx import AsteriskProcess
from callcenter.channels.telephony.pbxconfig import PbxSettings, free_port, free_udp_range

SCENARIOS = Path(__file__).resolve().parents[1] / "sipp"
AGENT_PHONES = ("1001", "1002", "1003")  # 1003: a supervisor's phone, in no queue
CUSTOMER_NUMBER = "+79161234567"
CUSTOMER_NAME = "Иван Петров"
OUR_NUMBER = "74951234567"


@dataclass
class Pbx:
    process: AsteriskProcess
    agent_ports: dict[str, int]


class EventLog:
    """Every AMI event of the session, with a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[AmiEvent] = []
        self._arrived = asyncio.Event()

    def __call__(self, event: AmiEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    def mark(self) -> int:
        return len(self.events)

    def matching(self, since: int, name: str, **headers: str) -> list[AmiEvent]:
        return [
            e
            for e in self.events[since:]
            if e.name == name and all(e.headers.get(k) == v for k, v in headers.items())
        ]

    async def wait_for(
        self, since: int, name: str, timeout: float = 15.0, count: int = 1, **headers: str
    ) -> list[AmiEvent]:
        """The first `count` events called `name` with these headers, after `since`."""
        async with asyncio.timeout(timeout):
            while len(found := self.matching(since, name, **headers)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return found[:count]


@dataclass
class Ami:
    client: AmiClient
    log: EventLog


@dataclass
class Sipp:
    """One sipp process; `finish()` returns its exit code and what it reported."""

    process: asyncio.subprocess.Process
    error_file: Path
    args: list[str] = field(default_factory=list)

    async def finish(self, timeout: float = 40.0) -> tuple[int, str]:
        async with asyncio.timeout(timeout):
            _, stderr = await self.process.communicate()
        errors = self.error_file.read_text(errors="replace") if self.error_file.exists() else ""
        report = f"sipp {' '.join(self.args)}\n{stderr.decode(errors='replace')}\n{errors}"
        return self.process.returncode or 0, report


@pytest.fixture(scope="session")
async def pbx() -> AsyncIterator[Pbx]:
    """A running Asterisk whose agents 1001 and 1002 are sipp phones on free ports."""
    agent_ports = {agent: free_port(socket.SOCK_DGRAM) for agent in AGENT_PHONES}
    contacts = {agent: f"sip:{agent}@127.0.0.1:{port}" for agent, port in agent_ports.items()}
    settings = PbxSettings.ephemeral(agent_contacts=contacts)
    async with AsteriskProcess(settings) as process:
        yield Pbx(process, agent_ports)


@pytest.fixture(scope="session")
async def ami_client(pbx: Pbx) -> AsyncIterator[AmiClient]:
    settings = pbx.process.settings
    client = AmiClient("127.0.0.1", settings.ami_port, settings.ami_username, settings.ami_secret)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


@pytest.fixture
async def ami(ami_client: AmiClient) -> AsyncIterator[Ami]:
    """The session's AMI connection with a log of the events during this test only: a log
    kept for the session would grow through every later test (and read as their memory)."""
    log = EventLog()
    ami_client.add_listener(log)
    try:
        yield Ami(ami_client, log)
    finally:
        ami_client.remove_listener(log)


@pytest.fixture(scope="session")
def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("sipp is not installed: apt-get install -y sip-tester")
    return path


@pytest.fixture
async def start_sipp(
    sipp_binary: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Sipp]]]:
    """Start a sipp scenario from tests/sipp on 127.0.0.1:`port`; returns a `Sipp`.

    Phones a failed test left running are killed after it, so they neither hold their
    port nor stay on a call into the next test."""
    started: list[asyncio.subprocess.Process] = []

    async def start(scenario: str, port: int, *args: str) -> Sipp:
        media, _ = free_udp_range(4)
        error_file = tmp_path / f"{scenario}-{port}.errors"
        argv = [
            "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
            "-mi", "127.0.0.1", "-mp", str(media), "-m", "1", "-nostdin",
            "-timeout", "30", "-timeout_error", "-trace_err", "-error_file", str(error_file),
            *args,
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sipp_binary,
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
        )
        started.append(process)
        await _wait_bound(port, process)
        return Sipp(process, error_file, [scenario, *args])

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _wait_bound(port: int, process: asyncio.subprocess.Process) -> None:
    """Wait until sipp has bound its UDP port (so Asterisk's INVITE does not get lost)."""
    async with asyncio.timeout(10):
        while process.returncode is None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"sipp exited with {process.returncode} before binding port {port}")


class AmiProxy:
    """A TCP relay in front of AMI that can cut or freeze the connections through it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._frozen: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", free_port())
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [client_w, server_w]

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    if writer not in self._frozen:
                        writer.write(data)

            writer.close()

        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w))

    def cut(self) -> None:
        """Close every relayed connection, as a restart of a firewall would."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def freeze(self) -> None:
        """Stop relaying on the current connections without closing them (half-open)."""
        self._frozen.update(self._writers)

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def ami_proxy(pbx: Pbx) -> AsyncIterator[AmiProxy]:
    proxy = AmiProxy(pbx.process.ami_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()

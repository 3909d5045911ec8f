"""Call load through the real Asterisk: 20 sipp agents in two queues, sipp customers calling.

Shared by tests/reliability/test_call_load.py (CI size) and bench/call_load.py (bigger runs).
The test overlay adds agent endpoints 2001-2020 (static contacts: one sipp process each) to a
copy of asterisk-config/, makes them members of both queues, and gives the copied dialplan a
second number that reaches the sales queue. Production configuration is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.channels.telephony.pbx import AsteriskProcess
from callcenter.channels.telephony.pbxconfig import (
    CONFIG_DIR,
    DIALPLAN_DIR,
    PbxSettings,
    free_port,
    free_udp_range,
)
from tests.telephony.conftest import Pbx

HERE = Path(__file__).resolve().parent
SIPP_DIR = HERE.parent / "sipp"
SUPPORT_NUMBER = "74951234567"
SALES_NUMBER = "74957654321"
NUMBERS = {"support": SUPPORT_NUMBER, "sales": SALES_NUMBER}


def agent_names(count: int) -> list[str]:
    return [f"{2001 + i}" for i in range(count)]


def _pjsip_agents(agent_ports: dict[str, int]) -> str:
    lines = ["", "; ---- Test overlay: load-test agents (static contacts, sipp phones) ----"]
    for agent, port in agent_ports.items():
        lines += [
            f"[{agent}](agent-endpoint)",
            f"aors = {agent}",
            f'callerid = "Agent {agent}" <{agent}>',
            f"[{agent}](agent-aor)",
            f"contact = sip:{agent}@127.0.0.1:{port}",
        ]
    return "\n".join(lines) + "\n"


def _with_members(queues_conf: str, agents: list[str]) -> str:
    members = "".join(f"member => PJSIP/{a},0,Agent {a}\n" for a in agents)
    out = []
    for line in queues_conf.splitlines(keepends=True):
        out.append(line)
        if line.startswith(("[support](", "[sales](")):
            out.append(members)
    return "".join(out)


SALES_DIALPLAN = f"""
; ---- Test overlay: a second number reaches the sales queue ----
[from-trunk]
exten => {SALES_NUMBER},1,Goto(inbound-sales,s,1)

[inbound-sales]
exten => s,1,Answer()
 same => n,Queue(sales,c,,,3600)
 same => n,Hangup()
"""


def overlay(base: Path, agent_ports: dict[str, int]) -> tuple[Path, Path]:
    """Copies of asterisk-config/ and dialplan/ with the load-test agents and sales number."""
    config_dir, dialplan_dir = base / "asterisk-config", base / "dialplan"
    shutil.copytree(CONFIG_DIR, config_dir)
    shutil.copytree(DIALPLAN_DIR, dialplan_dir)
    pjsip = config_dir / "pjsip.conf"
    text = pjsip.read_text(encoding="utf-8")
    include = "#tryinclude pjsip_local.conf"
    assert include in text, "pjsip.conf no longer includes pjsip_local.conf"
    pjsip.write_text(text.replace(include, _pjsip_agents(agent_ports) + include), "utf-8")
    queues = config_dir / "queues.conf"
    agents = list(agent_ports)
    queues.write_text(_with_members(queues.read_text(encoding="utf-8"), agents), "utf-8")
    extensions = dialplan_dir / "extensions.conf"
    extensions.write_text(extensions.read_text(encoding="utf-8") + SALES_DIALPLAN, "utf-8")
    return config_dir, dialplan_dir


LoadPbx = Pbx  # the telephony suite's private Asterisk, with this suite's agents


@contextlib.asynccontextmanager
async def load_pbx(base: Path, agents: int = 20) -> AsyncIterator[LoadPbx]:
    """A private Asterisk with `agents` load-test agents in support and sales."""
    ports = {agent: free_port(socket.SOCK_DGRAM) for agent in agent_names(agents)}
    config_dir, dialplan_dir = overlay(base, ports)
    rtp_start, rtp_end = free_udp_range(1000)  # two ports per channel, two channels per call
    settings = PbxSettings.ephemeral(rtp_start=rtp_start, rtp_end=rtp_end, survey_enabled=False)
    process = AsteriskProcess(settings, config_dir=config_dir, dialplan_dir=dialplan_dir)
    async with process:
        yield LoadPbx(process, ports)


@dataclass
class Sipp:
    process: asyncio.subprocess.Process
    argv: list[str]
    error_file: Path
    stderr: bytes = field(default=b"")

    async def finish(self, timeout: float) -> tuple[int, str]:
        async with asyncio.timeout(timeout):
            _, self.stderr = await self.process.communicate()
        return self.process.returncode or 0, self.report()

    def report(self) -> str:
        errors = self.error_file.read_text(errors="replace") if self.error_file.exists() else ""
        tail = "\n".join(errors.splitlines()[-20:])
        return f"sipp {' '.join(self.argv)}\n{self.stderr.decode(errors='replace')}\n{tail}"

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 5)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def start_sipp(work: Path, scenario: Path, port: int, *args: str) -> Sipp:
    """Start sipp on 127.0.0.1:`port` and wait until it has bound the port."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed: apt-get install -y sip-tester")
    media, _ = free_udp_range(4)
    error_file = work / f"{scenario.stem}-{port}.errors"
    argv = [
        "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
        "-mp", str(media), "-nostdin", "-trace_err", "-error_file", str(error_file), *args,
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sipp,
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=work,
    )
    async with asyncio.timeout(10):
        while process.returncode is None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    return Sipp(process, argv, error_file)
            await asyncio.sleep(0.05)
    raise RuntimeError(f"sipp exited with {process.returncode} before binding port {port}")


async def start_agents(work: Path, pbx: LoadPbx, talk_ms: int) -> list[Sipp]:
    """One sipp phone per agent: rings 200 ms, answers, talks `talk_ms`, hangs up."""
    scenario = HERE / "load_agent.xml"
    return [
        await start_sipp(work, scenario, port, "-m", "100000", "-d", str(talk_ms))
        for port in pbx.agent_ports.values()
    ]


def caller_number(queue: str, index: int) -> str:
    prefix = {"support": "+7916", "sales": "+7926"}[queue]
    return f"{prefix}{index:07d}"


async def start_callers(work: Path, pbx: LoadPbx, queue: str, calls: int, rate: int) -> Sipp:
    """`calls` customers of `queue`, all at once (up to `rate` new calls a second)."""
    injection = work / f"callers-{queue}.csv"
    rows = [f"{caller_number(queue, i)};Клиент {queue} {i}" for i in range(calls)]
    injection.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return await start_sipp(
        work, HERE / "load_customer.xml", free_port(socket.SOCK_DGRAM),
        "-inf", str(injection), "-s", NUMBERS[queue], "-m", str(calls), "-l", str(calls),
        "-r", str(rate), "-timeout", "600", "-timeout_error",
        f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip


async def start_abandoning(work: Path, pbx: LoadPbx, queue: str, calls: int) -> Sipp:
    """`calls` customers who hang up after 3 s in the queue (tests/sipp/customer_abandon.xml)."""
    return await start_sipp(
        work, SIPP_DIR / "customer_abandon.xml", free_port(socket.SOCK_DGRAM),
        "-s", NUMBERS[queue], "-m", str(calls), "-l", str(calls), "-r", str(calls),
        "-timeout", "120", "-timeout_error", f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip

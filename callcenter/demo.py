"""``callcenter demo``: the whole product on one machine, for a newcomer's first minute.

``demo run`` starts a private Asterisk (the provisioned one), a sipp phone that answers as agent
1001 (the demo agent's endpoint), and ``serve`` connected to both; it writes where the PBX
listens to ``<data dir>/demo.json``. ``demo call --from NUMBER`` places a customer call into
the support queue with sipp, so the agent's browser shows the screen-pop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenter.channels.telephony.pbx import AsteriskProcess
from callcenter.channels.telephony.pbxconfig import REPO_ROOT, PbxSettings, free_port
from callcenter.config import ConfigError, Settings
from callcenter.db import create_engine, session_factory, unit_of_work
from callcenter.domain.customers import attach_identity
from callcenter.domain.errors import DuplicateIdentity
from callcenter.domain.inbox import InboundMessage, ingest
from callcenter.models import Channel, IdentityKind
from callcenter.serve import serve

log = logging.getLogger(__name__)

SCENARIOS = REPO_ROOT / "tests" / "sipp"
OUR_NUMBER = "74951234567"
DEMO_CUSTOMER = ("+79161234567", "Иван Петров", "7001", "ivan.petrov@example.com")
AGENT_RINGS_MS = 2500
CALL_LASTS_MS = 8000


def _state_file(settings: Settings) -> Path:
    return settings.data_dir / "demo.json"


def _sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise ConfigError("sipp is not installed: apt-get install sip-tester (scripts/setup does)")
    return path


async def seed_demo_customer(settings: Settings) -> None:
    """Ivan wrote in Telegram and by email before he calls: what the pop should show."""
    phone, name, telegram_id, email = DEMO_CUSTOMER
    now = datetime.now(UTC)
    engine = create_engine(settings.resolved_database_url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            first = await ingest(
                session,
                InboundMessage(
                    channel=Channel.TELEGRAM,
                    external_id=f"{telegram_id}:demo-1",
                    identity_kind=IdentityKind.TELEGRAM,
                    identity_value=telegram_id,
                    display_name=name,
                    occurred_at=now - timedelta(hours=3),
                    text="Здравствуйте! Мой заказ №12345 до сих пор не пришёл.",
                ),
            )
            if first.duplicate:
                return
            for kind, value in ((IdentityKind.PHONE, phone), (IdentityKind.EMAIL, email)):
                with contextlib.suppress(DuplicateIdentity):
                    await attach_identity(session, first.customer, kind, value, source="demo")
            await ingest(
                session,
                InboundMessage(
                    channel=Channel.EMAIL,
                    external_id="demo-order-12345@example.com",
                    identity_kind=IdentityKind.EMAIL,
                    identity_value=email,
                    occurred_at=now - timedelta(hours=1),
                    subject="Заказ №12345",
                    text="Пишу второй раз: где мой заказ 12345? Трек-номер не обновляется.",
                ),
            )
    finally:
        await engine.dispose()


async def _agent_phone(port: int, workdir: Path) -> asyncio.subprocess.Process:
    """Agent 1001's phone: rings for a moment, then answers every call."""
    return await asyncio.create_subprocess_exec(
        _sipp(), "-sf", str(SCENARIOS / "agent_answer.xml"), "-i", "127.0.0.1",
        "-p", str(port), "-mi", "127.0.0.1", "-d", str(AGENT_RINGS_MS), "-nostdin",
        "-aa",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, cwd=workdir,
    )  # fmt: skip


async def run_demo(settings: Settings) -> None:
    """Asterisk, the agent's phone and the product, until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await seed_demo_customer(settings)
    phone_port = free_port(socket.SOCK_DGRAM)
    pbx_settings = PbxSettings.ephemeral(
        agent_contacts={"1001": f"sip:1001@127.0.0.1:{phone_port}"}
    )
    workdir = Path(tempfile.mkdtemp(prefix="callcenter-demo-"))
    async with AsteriskProcess(pbx_settings) as pbx:
        phone = await _agent_phone(phone_port, workdir)
        state = {"sip_port": pbx.sip_port, "our_number": OUR_NUMBER, "pid": os.getpid()}
        _state_file(settings).write_text(json.dumps(state))
        wired = replace(
            settings,
            ami_port=pbx_settings.ami_port,
            ami_user=pbx_settings.ami_username,
            ami_password=pbx_settings.ami_secret,
            ari_url=f"http://127.0.0.1:{pbx_settings.http_port}",
            ari_user=pbx_settings.ari_username,
            ari_password=pbx_settings.ari_password,
            agi_port=pbx_settings.agi_port,
        )
        print(
            f"demo: Asterisk on 127.0.0.1:{pbx.sip_port} (SIP), agent 1001's phone answers; "
            f"place a call with: callcenter demo call --from {DEMO_CUSTOMER[0]}",
            flush=True,
        )
        try:
            await serve(wired, settings.web_host, settings.web_port, stop)
        finally:
            phone.terminate()
            await phone.wait()
            _state_file(settings).unlink(missing_ok=True)
            shutil.rmtree(workdir, ignore_errors=True)


async def place_call(settings: Settings, number: str, name: str) -> int:
    """One customer call from ``number`` into the running demo; returns sipp's exit code."""
    try:
        state = json.loads(_state_file(settings).read_text())
    except FileNotFoundError:
        raise ConfigError("no demo is running here: start it with scripts/demo") from None
    workdir = Path(tempfile.mkdtemp(prefix="callcenter-call-"))
    try:
        caller = workdir / "caller.csv"
        # sipp's injection file is ';'-separated and the name goes inside a quoted SIP header.
        safe_name = "".join(ch for ch in name if ch.isprintable() and ch not in ';"\\')
        caller.write_text(f"SEQUENTIAL\n{number};{safe_name}\n", encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            _sipp(), "-sf", str(SCENARIOS / "customer_as.xml"), "-inf", str(caller),
            "-s", state["our_number"], "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
            "-mi", "127.0.0.1", "-m", "1", "-d", str(CALL_LASTS_MS), "-nostdin",
            f"127.0.0.1:{state['sip_port']}",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, cwd=workdir,
        )  # fmt: skip
        _, stderr = await process.communicate()
        if process.returncode:
            log.error("sipp: %s", stderr.decode(errors="replace").strip()[-500:])
        return process.returncode or 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

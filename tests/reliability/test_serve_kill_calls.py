"""`callcenter serve` killed with SIGKILL while calls are talked through the real Asterisk.

Started again before they end, the new process learns the calls from Asterisk at login; when
the calls end (answered or abandoned) while it is down, it reads them from Asterisk's queue_log
afterwards, and the calls that never reached a queue (hung up in the greeting, rejected) from
Asterisk's CDR file. Either way each call gets exactly one record with its outcome, agent and
times."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.models import Call, CallOutcome, Channel, Identity, IdentityKind, Interaction
from tests.reliability.callload import (
    SIPP_DIR,
    SUPPORT_NUMBER,
    LoadPbx,
    caller_number,
    load_pbx,
    start_abandoning,
    start_agents,
    start_callers,
    start_sipp,
)
from tests.reliability.processes import Processes, kill, until
from tests.reliability.product import add_staff
from tests.telephony.product import healthy

pytestmark = pytest.mark.asterisk

CALLS = 5
CHECKPOINT = "queue_log.checkpoint"  # in the data folder, saved after each AMI login
CDR_CHECKPOINT = "cdr.checkpoint"
TALK_MS = 15_000


def _settings(url: str, pbx: LoadPbx, data_dir: Path) -> dict[str, str]:
    pbx_settings = pbx.process.settings
    return {
        "database_url": url, "data_dir": str(data_dir),
        "ami_port": str(pbx_settings.ami_port), "ami_user": pbx_settings.ami_username,
        "ami_password": pbx_settings.ami_secret, "agi_port": str(pbx_settings.agi_port),
        "session_key": "kill-session-key-" + "x" * 32,
        "queue_log_path": str(pbx.process.run_dir / "log" / "queue_log"),
        "cdr_path": str(pbx.process.run_dir / "log" / "cdr.csv"),  # cdr_custom.conf
    }  # fmt: skip


async def test_serve_killed_mid_call_and_restarted_records_each_call_once(
    database: tuple[str, async_sessionmaker[AsyncSession]], tmp_path: Path
) -> None:
    url, sessions = database
    async with load_pbx(tmp_path, agents=CALLS) as pbx:
        agent_ids = await add_staff(sessions, pbx)
        records = await _calls_across_a_kill(sessions, pbx, _settings(url, pbx, tmp_path), tmp_path)

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
    agents = await start_agents(work, pbx, TALK_MS)
    try:
        serve = await _serve(processes, port, settings, "serve up")
        await until(_exists(work / CHECKPOINT), "logged in to AMI (queue_log read)", timeout=30)
        callers = await start_callers(work, pbx, "support", CALLS, rate=CALLS)
        await asyncio.sleep(5)  # every call answered and talking

        await kill(serve)
        serve = await _serve(processes, port, settings, "serve up again")

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


ANSWERED_DOWN, ABANDONED_DOWN, TALK_DOWN_MS = 3, 2, 6_000


async def test_calls_ending_while_serve_is_down_are_recorded_from_the_queue_log(
    database: tuple[str, async_sessionmaker[AsyncSession]],
    tmp_path: Path,
) -> None:
    url, sessions = database
    async with load_pbx(tmp_path, agents=ANSWERED_DOWN) as pbx:
        agent_ids = await add_staff(sessions, pbx)
        records = await _calls_ending_while_down(
            sessions, pbx, _settings(url, pbx, tmp_path), tmp_path
        )

    assert len(records) == ANSWERED_DOWN + ABANDONED_DOWN, [r.__dict__ for r in records]
    assert len({r.linkedid for r in records}) == len(records)
    answered = [r for r in records if r.queue == "support"]
    abandoned = [r for r in records if r.queue == "sales"]
    assert sorted(r.caller_number for r in answered) == sorted(
        caller_number("support", i) for i in range(ANSWERED_DOWN)
    )
    for record in answered:
        assert record.outcome is CallOutcome.ANSWERED, record.__dict__
        assert record.agent_id == agent_ids[record.agent_endpoint], record.__dict__
        assert abs(record.talk_seconds - TALK_DOWN_MS / 1000) <= 3, record.__dict__
        assert record.answered_at is not None and record.ended_at > record.answered_at
    assert len(abandoned) == ABANDONED_DOWN
    for record in abandoned:
        assert record.outcome is CallOutcome.ABANDONED, record.__dict__
        assert record.agent_id is None and record.talk_seconds == 0, record.__dict__
        assert 2 <= record.wait_seconds <= 6, record.__dict__


async def _calls_ending_while_down(
    sessions: async_sessionmaker[AsyncSession], pbx: LoadPbx, settings: dict[str, str], work: Path
) -> list[Call]:
    processes = Processes(work)
    port = free_port()
    agents = await start_agents(work, pbx, TALK_DOWN_MS)
    try:
        serve = await _serve(processes, port, settings, "serve up")
        checkpoint = work / CHECKPOINT
        await until(_exists(checkpoint), "the queue_log checkpoint taken at login", timeout=30)
        callers = await start_callers(work, pbx, "support", ANSWERED_DOWN, rate=ANSWERED_DOWN)
        await asyncio.sleep(2)  # every agent answered and talking

        await kill(serve)
        # While serve is down: the talks end, and callers to sales (every agent busy) give up.
        abandoning = await start_abandoning(work, pbx, "sales", ABANDONED_DOWN)
        for sipp in (callers, abandoning):
            code, report = await sipp.finish(timeout=120)
            assert code == 0, report
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Call)) == 0

        await _recovered_then_read_again(
            processes, port, settings, sessions, ANSWERED_DOWN + ABANDONED_DOWN, checkpoint
        )
    finally:
        for agent in agents:
            await agent.stop()
        await processes.close()
    async with sessions() as session:
        return list(await session.scalars(select(Call)))


GREETING_CALLER = "+79161234567"  # tests/sipp/customer_abandon.xml, "Иван Петров"
REJECTED_CALLER = "+79035550101"  # tests/sipp/customer_rejected.xml


async def test_calls_ending_before_the_queue_while_serve_is_down_are_recorded_from_the_cdr(
    database: tuple[str, async_sessionmaker[AsyncSession]],
    tmp_path: Path,
) -> None:
    """A caller who hangs up during the greeting's lookup and a call to a number the dialplan
    rejects never reach a queue, so queue_log does not know them; a queue call is in both
    queue_log and the CDR. Each is stored once, also after another restart."""
    url, sessions = database
    async with load_pbx(tmp_path, agents=1) as pbx:
        agent_ids = await add_staff(sessions, pbx)
        await _calls_ending_before_the_queue(sessions, pbx, _settings(url, pbx, tmp_path), tmp_path)
        async with sessions() as session:
            records = list(await session.scalars(select(Call)))
            history = list(
                await session.scalars(
                    select(Interaction)
                    .join(Identity, Identity.customer_id == Interaction.customer_id)
                    .where(
                        Identity.kind == IdentityKind.PHONE,
                        Identity.value == GREETING_CALLER,
                        Interaction.channel == Channel.CALL,
                    )
                )
            )

    assert len(records) == 3, [r.__dict__ for r in records]
    assert len({r.linkedid for r in records}) == 3
    by_caller = {r.caller_number: r for r in records}
    assert set(by_caller) == {GREETING_CALLER, REJECTED_CALLER, caller_number("support", 0)}
    for missed in (by_caller[GREETING_CALLER], by_caller[REJECTED_CALLER]):
        assert missed.outcome is CallOutcome.MISSED, missed.__dict__
        assert missed.queue is None and missed.agent_id is None, missed.__dict__
        assert missed.ended_at >= missed.started_at
    assert (
        by_caller[GREETING_CALLER].ended_at - by_caller[GREETING_CALLER].started_at
    ).seconds >= 2
    queued = by_caller[caller_number("support", 0)]
    assert (queued.queue, queued.outcome) == ("support", CallOutcome.ANSWERED), queued.__dict__
    assert queued.agent_id == agent_ids[queued.agent_endpoint or ""], queued.__dict__
    # In the customer's history exactly once, as agents read it.
    assert len(history) == 1, [h.__dict__ for h in history]
    assert history[0].external_id == by_caller[GREETING_CALLER].linkedid
    assert "не дождавшись очереди" in history[0].text


async def _stalled_lookup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A FastAGI lookup that keeps the caller in the greeting (waits for a digit) until the
    caller hangs up, as a slow lookup or a long greeting would."""
    try:
        while (await reader.readline()).strip():  # the AGI environment
            pass
        writer.write(b"WAIT FOR DIGIT 20000\n")
        await writer.drain()
        await reader.readline()
    finally:
        writer.close()


async def _calls_ending_before_the_queue(
    sessions: async_sessionmaker[AsyncSession], pbx: LoadPbx, settings: dict[str, str], work: Path
) -> None:
    processes = Processes(work)
    port = free_port()
    sip = f"127.0.0.1:{pbx.process.sip_port}"
    agents = await start_agents(work, pbx, 3_000)
    try:
        serve = await _serve(processes, port, settings, "serve up")
        checkpoint = work / CDR_CHECKPOINT
        # Asterisk has written no CDR yet: the checkpoint is the start of the file to come.
        await until(_exists(checkpoint), "the CDR checkpoint taken at login", timeout=30)
        await kill(serve)

        # While serve is down (its FastAGI too): a lookup that never answers holds the first
        # caller in the greeting until they hang up; the second dials a number refused.
        lookup = await asyncio.start_server(
            _stalled_lookup, "127.0.0.1", pbx.process.settings.agi_port
        )
        try:
            greeting = await start_sipp(
                work, SIPP_DIR / "customer_abandon.xml", free_port(socket.SOCK_DGRAM),
                "-s", SUPPORT_NUMBER, "-m", "1", "-timeout", "60", "-timeout_error", sip,
            )  # fmt: skip
            rejected = await start_sipp(
                work, SIPP_DIR / "customer_rejected.xml", free_port(socket.SOCK_DGRAM),
                "-s", "12", "-m", "1", "-timeout", "60", "-timeout_error", sip,
            )  # fmt: skip
            for sipp in (greeting, rejected):
                code, report = await sipp.finish(timeout=60)
                assert code == 0, report
        finally:
            lookup.close()
            await lookup.wait_closed()
        # And a queue call (the lookup now fails at once), which queue_log and the CDR hold.
        queued = await start_callers(work, pbx, "support", 1, rate=1)
        code, report = await queued.finish(timeout=60)
        assert code == 0, report
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Call)) == 0

        await _recovered_then_read_again(processes, port, settings, sessions, 3, checkpoint)
    finally:
        for agent in agents:
            await agent.stop()
        await processes.close()


async def _recovered_then_read_again(
    processes: Processes,
    port: int,
    settings: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    count: int,
    checkpoint: Path,
) -> None:
    """Start serve until `count` calls are recorded, then once more until it has read
    `checkpoint`'s file again (a restart must record nothing twice; the callers assert that)."""
    serve = await _serve(processes, port, settings, "serve up again")

    async def recorded() -> bool:
        async with sessions() as session:
            return (await session.scalar(select(func.count()).select_from(Call)) or 0) >= count

    await until(recorded, "the calls ended while down recorded", timeout=60)
    await processes.stop(serve)
    read = checkpoint.stat().st_mtime_ns
    serve = await _serve(processes, port, settings, "serve up a third time")
    await until(_rewritten(checkpoint, read), f"{checkpoint.name} read again", timeout=30)
    await processes.stop(serve)


async def _serve(
    processes: Processes, port: int, settings: dict[str, str], what: str
) -> asyncio.subprocess.Process:
    """`callcenter serve` on `port`, once its health check answers (`what` names the wait)."""
    serve = await processes.start(["serve", "--port", str(port)], settings)
    await until(lambda: healthy(f"http://127.0.0.1:{port}"), what, timeout=120)
    return serve


def _exists(path: Path):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return path.exists()

    return check


def _rewritten(path: Path, since_ns: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return path.stat().st_mtime_ns != since_ns

    return check

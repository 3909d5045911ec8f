"""The callback dialler against the real Asterisk: a due callback rings a free sipp agent
(with the customer's card popping on the agent's screen), then the sipp customer, and bridges
them; no answer or busy is retried later and fails after the limit, each attempt stored with
its own outcome; two diallers dial once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.callbacks import CallbackPolicy, request_callback
from callcenter.bus import Bus
from callcenter.channels.telegram.models import CallbackRequest, CallbackStatus
from callcenter.channels.telephony.ari import AriClient
from callcenter.channels.telephony.clicktocall import ClickToCallRequested, ClickToCallTimings
from callcenter.channels.telephony.dialler import CallbackDialler
from callcenter.channels.telephony.events import AgentState
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.channels.telephony.service import TelephonyService
from callcenter.channels.telephony.stasis import StasisApp
from callcenter.config import Settings
from callcenter.db import create_engine, session_factory, unit_of_work
from callcenter.domain.customers import attach_identity, create_customer
from callcenter.models import (
    Call,
    CallOutcome,
    Direction,
    IdentityKind,
    Interaction,
    Role,
    User,
)
from callcenter.screenpop.service import ScreenPopService
from callcenter.serve import serve
from tests.telephony.conftest import CUSTOMER_NAME, CUSTOMER_NUMBER, Ami, Pbx

pytestmark = pytest.mark.asterisk
TIMINGS = ClickToCallTimings(agent_ring=10, customer_ring=5)
POLICY = CallbackPolicy(max_attempts=2, retry_after=timedelta(minutes=10))


@dataclass
class Clock:
    shift: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


@dataclass
class Rig:
    bus: Bus
    service: TelephonyService
    customer_port: int
    clock: Clock
    cards: list[tuple[int, dict]] = field(default_factory=list)
    requests: list[ClickToCallRequested] = field(default_factory=list)

    def dialler(self, sessions: async_sessionmaker[AsyncSession]) -> CallbackDialler:
        return CallbackDialler(
            sessions, self.bus, self.service.state, policy=POLICY, timings=TIMINGS, now=self.clock
        )


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


async def drained(dialler: CallbackDialler) -> None:
    async with asyncio.timeout(60):  # a call is rung, talked and hung up well within this
        await dialler.drain()


async def pause(ami: Ami, interface: str, paused: bool) -> None:
    action = {"Action": "QueuePause", "Queue": "support", "Interface": interface}
    response = await ami.client.send_action(action | {"Paused": "true" if paused else "false"})
    assert response.ok, response.headers


def available(rig: Rig, interface: str) -> bool:
    return any(
        agent.interface == interface and agent.state is AgentState.AVAILABLE and agent.queues
        for agent in rig.service.state.agent_snapshots(datetime.now(UTC))
    )


@pytest.fixture
async def rig(
    database_url: str, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, ami: Ami
) -> AsyncIterator[Rig]:
    """AMI live state, the Stasis app and the screen-pop service on one bus; only 1001 free."""
    async with unit_of_work(sessions) as session:
        session.add(User(username="anna", role=Role.AGENT, sip_endpoint="PJSIP/1001"))
    pbx_settings = pbx.process.settings
    settings = Settings(
        database_url=database_url,
        ami_port=pbx_settings.ami_port,
        ami_user=pbx_settings.ami_username,
        ami_password=pbx_settings.ami_secret,
    )
    bus = Bus()
    service = TelephonyService(settings, sessions, bus, queues={})
    customer_port = free_port(socket.SOCK_DGRAM)
    rig = Rig(bus, service, customer_port, Clock())

    def publish(user_id: int, _event: str, data: dict) -> int:
        rig.cards.append((user_id, data))
        return 1

    ScreenPopService(sessions, publish).subscribe(bus)

    async def requested(request: ClickToCallRequested) -> None:
        rig.requests.append(request)

    bus.subscribe(ClickToCallRequested, requested)
    ari = AriClient(
        f"http://127.0.0.1:{pbx.process.http_port}",
        pbx_settings.ari_username,
        pbx_settings.ari_password,
        "callcenter",
    )
    app = StasisApp(
        ari,
        sessions,
        bus,
        customer_dial=f"PJSIP/trunk/sip:{{number}}@127.0.0.1:{customer_port}",
        click_timings=TIMINGS,
    )
    bus.subscribe(ClickToCallRequested, app.click_to_call)
    await pause(ami, "PJSIP/1001", False)
    await pause(ami, "PJSIP/1002", True)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    await ari.start()
    try:
        await until(lambda: available(rig, "PJSIP/1001"), "agent 1001 shows available")
        assert not available(rig, "PJSIP/1002")
        yield rig
    finally:
        await bus.drain()
        await app.close()
        await ari.stop()
        stop.set()
        await asyncio.wait_for(running, 20)
        await pause(ami, "PJSIP/1002", False)


async def _callback(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with unit_of_work(sessions) as session:
        customer = await create_customer(session, CUSTOMER_NAME)
        await attach_identity(session, customer, IdentityKind.PHONE, CUSTOMER_NUMBER)
        row = await request_callback(
            session,
            customer_id=customer.id,
            ticket_id=None,
            phone=CUSTOMER_NUMBER,
            channel="call",
            due_at=datetime.now(UTC) - timedelta(minutes=1),
            queue="support",
        )
        return row.id


async def _row(sessions: async_sessionmaker[AsyncSession], callback_id: int) -> CallbackRequest:
    async with sessions() as session:
        return await session.get(CallbackRequest, callback_id)


async def _calls(sessions: async_sessionmaker[AsyncSession]) -> list[Call]:
    async with sessions() as session:
        return list(await session.scalars(select(Call)))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_due_callback_rings_the_free_agent_then_the_customer_and_is_done(
    rig: Rig, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, ami: Ami, start_sipp
) -> None:
    callback_id = await _callback(sessions)
    agent = await start_sipp("agent_hangup.xml", pbx.agent_ports["1001"])  # talks 1 s
    customer = await start_sipp("agent_answer.xml", rig.customer_port, "-d", "300")
    since = ami.log.mark()
    dialler = rig.dialler(sessions)

    assert await dialler.run_once() == 1
    assert await dialler.run_once() == 0  # the agent is taken; nobody else is free
    await drained(dialler)

    row = await _row(sessions, callback_id)
    assert (row.status, row.attempts, row.agent_endpoint) == (CallbackStatus.DONE, 1, "PJSIP/1001")
    assert row.lease_until is None and row.outcome.startswith("connected")
    # The agent's phone rang first, then the customer's (through the trunk), one bridge.
    dials = [e.headers["Channel"] for e in ami.log.matching(since, "Newchannel")]
    assert [d.split("-")[0] for d in dials][:2] == ["PJSIP/1001", "PJSIP/trunk"], dials
    await ami.log.wait_for(since, "BridgeEnter", count=2)
    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report
    [call] = await _calls(sessions)
    assert (call.agent_endpoint, call.caller_number, call.queue, call.outcome) == (
        "PJSIP/1001",
        CUSTOMER_NUMBER,
        "support",
        CallOutcome.ANSWERED,
    )
    # The screen-pop: the customer's card went to the agent while the phone rang.
    [(user_id, card)] = rig.cards
    async with sessions() as session:
        anna = await session.scalar(select(User.id).where(User.username == "anna"))
    assert user_id == anna and card["id"] == f"pop:{call.linkedid}"
    assert CUSTOMER_NAME in str(card) and card["queue"] == "support"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_customer_who_does_not_answer_is_retried_later_then_failed(
    rig: Rig, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, start_sipp
) -> None:
    callback_id = await _callback(sessions)
    dialler = rig.dialler(sessions)
    for attempt in (1, 2):
        agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
        customer = await start_sipp("agent_noanswer.xml", rig.customer_port)
        assert await dialler.run_once() == 1
        await drained(dialler)
        for phone in (agent, customer):
            code, report = await phone.finish()
            assert code == 0, report  # the customer's ringing was cancelled, the agent got BYE
        row = await _row(sessions, callback_id)
        assert row.attempts == attempt
        if attempt == 1:
            assert row.status is CallbackStatus.REQUESTED
            assert row.due_at >= rig.clock() + POLICY.retry_after - timedelta(minutes=1)
            await until(lambda: available(rig, "PJSIP/1001"), "1001 free again")
            assert await dialler.run_once() == 0  # not yet: later
            rig.clock.shift = POLICY.retry_after + timedelta(seconds=1)
    assert row.status is CallbackStatus.FAILED and row.outcome.startswith("no_answer")
    assert len(rig.requests) == 2
    # Each unanswered ring is an outbound call in the customer's history, not answered.
    calls = await _calls(sessions)
    assert [(c.outcome, c.answered_at, c.agent_endpoint) for c in calls] == [
        (CallOutcome.NO_ANSWER, None, "PJSIP/1001")
    ] * 2
    assert len({c.linkedid for c in calls}) == 2
    async with sessions() as session:
        texts = list(await session.scalars(select(Interaction.text).order_by(Interaction.id)))
    assert texts == [f"Обратный звонок на {CUSTOMER_NUMBER}: не ответил"] * 2
    assert await dialler.run_once() == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_busy_customer_is_stored_as_busy_and_retried_later(
    rig: Rig, sessions: async_sessionmaker[AsyncSession], pbx: Pbx, start_sipp
) -> None:
    callback_id = await _callback(sessions)
    dialler = rig.dialler(sessions)
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    customer = await start_sipp("agent_busy.xml", rig.customer_port)  # 486 Busy Here
    assert await dialler.run_once() == 1
    await drained(dialler)
    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report
    row = await _row(sessions, callback_id)
    assert (row.status, row.attempts) == (CallbackStatus.REQUESTED, 1)
    assert row.outcome.startswith("busy") and row.due_at > rig.clock()
    [call] = await _calls(sessions)
    assert (call.outcome, call.answered_at, call.talk_seconds) == (CallOutcome.BUSY, None, 0)
    async with sessions() as session:
        interaction = await session.get(Interaction, call.interaction_id)
    assert interaction.direction is Direction.OUTBOUND
    assert interaction.text == f"Обратный звонок на {CUSTOMER_NUMBER}: занято"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_two_diallers_in_two_processes_dial_a_callback_once(
    rig: Rig, sessions: async_sessionmaker[AsyncSession], database_url: str, pbx: Pbx, start_sipp
) -> None:
    callback_id = await _callback(sessions)
    agent = await start_sipp("agent_hangup.xml", pbx.agent_ports["1001"])
    customer = await start_sipp("agent_answer.xml", rig.customer_port, "-d", "300")
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        # Each dialler has its own database connections, as two processes would.
        diallers = [rig.dialler(session_factory(engine)) for engine in engines]
        started = await asyncio.gather(*(dialler.run_once() for dialler in diallers))
        await asyncio.gather(*(drained(dialler) for dialler in diallers))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(started) == [0, 1] and len(rig.requests) == 1
    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report
    row = await _row(sessions, callback_id)
    assert (row.status, row.attempts) == (CallbackStatus.DONE, 1)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Call)) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_callcenter_serve_dials_due_callbacks_when_ami_and_ari_are_configured(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    pbx: Pbx,
    ami: Ami,
    start_sipp,
    tmp_path,
) -> None:
    """The composition root wires the dialler: the agent's phone rings for a due callback.

    The test Asterisk's trunk leads nowhere, so the customer cannot be reached: the attempt is
    counted (stored as a failed outbound call) and the callback waits for a later try."""
    await pause(ami, "PJSIP/1001", False)
    await pause(ami, "PJSIP/1002", True)
    pbx_settings = pbx.process.settings
    port = free_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        web_port=port,
        ami_port=pbx_settings.ami_port,
        ami_user=pbx_settings.ami_username,
        ami_password=pbx_settings.ami_secret,
        ari_url=f"http://127.0.0.1:{pbx.process.http_port}",
        ari_user=pbx_settings.ari_username,
        ari_password=pbx_settings.ari_password,
        session_key="e2e-session-key-" + "x" * 32,
    )
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    callback_id = await _callback(sessions)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop))
    try:
        async with asyncio.timeout(90):
            while (row := await _row(sessions, callback_id)).attempts == 0:
                assert not task.done(), task
                await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await pause(ami, "PJSIP/1002", False)
    code, report = await agent.finish()
    assert code == 0, report  # rung, answered, hung up when the customer leg failed
    assert (row.status, row.agent_endpoint) == (CallbackStatus.REQUESTED, "PJSIP/1001")
    assert row.outcome.startswith("failed") and row.due_at > datetime.now(UTC)
    [call] = await _calls(sessions)  # the failed attempt is in the customer's history
    assert (call.outcome, call.answered_at) == (CallOutcome.FAILED, None)

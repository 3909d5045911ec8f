"""Call records in the database: once per Linkedid, filed under the caller's profile."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.telephony.events import CallEnded, CallRecorded
from callcenter.channels.telephony.records import CallRecorder, store_call
from callcenter.channels.telephony.state import LiveState
from callcenter.db import create_engine, session_factory, unit_of_work
from callcenter.domain.customers import attach_identity, create_customer, find_customer
from callcenter.migrate import upgrade_async
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    Role,
    User,
)
from tests.dbs import postgres_database
from tests.telephony.transcripts import load, play

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ended_calls(name: str) -> list[CallEnded]:
    """The call records a fresh LiveState makes of a transcript."""
    events = play(LiveState(), load(name), START)
    return [e for e in events if isinstance(e, CallEnded)]


async def add_agents(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with unit_of_work(sessions) as session:
        users = [
            User(username=f"agent{n}", role=Role.AGENT, sip_endpoint=f"PJSIP/100{n}")
            for n in (1, 2)
        ]
        session.add_all(users)
        await session.flush()
        return {user.sip_endpoint or "": user.id for user in users}


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_answered_call_is_an_interaction_of_the_callers_new_profile(sessions):
    agents = await add_agents(sessions)
    [ended] = ended_calls("answered_call.txt")

    async with unit_of_work(sessions) as session:
        stored = await store_call(session, ended)

    async with sessions() as session:
        interaction = await session.get(Interaction, stored.id)
        call = await session.get(Call, stored.id)
        customer = await find_customer(session, IdentityKind.PHONE, "8 916 123-45-67")
    assert interaction is not None and call is not None and customer is not None
    assert (interaction.channel, interaction.direction, interaction.external_id) == (
        Channel.CALL,
        Direction.INBOUND,
        "1795818927.2",
    )
    assert interaction.text == "Звонок в очередь support, ожидание 12 с, разговор 95 с"
    assert interaction.customer_id == customer.id
    assert customer.display_name == "Иван Петров"
    assert interaction.agent_id == agents["PJSIP/1001"]
    assert interaction.occurred_at == ended.started_at
    assert (call.linkedid, call.queue, call.outcome) == (
        "1795818927.2",
        "support",
        CallOutcome.ANSWERED,
    )
    assert (call.wait_seconds, call.talk_seconds) == (12, 95)
    assert (call.agent_id, call.agent_endpoint) == (agents["PJSIP/1001"], "PJSIP/1001")
    assert (call.started_at, call.answered_at, call.ended_at) == (
        ended.started_at,
        ended.answered_at,
        ended.ended_at,
    )


async def test_call_from_a_known_number_joins_the_existing_profile(sessions):
    async with unit_of_work(sessions) as session:
        known = await create_customer(session, "Жанна Ёлкина (VIP)")
        await attach_identity(session, known, IdentityKind.PHONE, "+7 903 555-12-34")
    abandoned = [e for e in ended_calls("caller_abandons.txt") if e.caller_number == "89035551234"]

    async with unit_of_work(sessions) as session:
        stored = await store_call(session, abandoned[0], agents={})

    assert stored.customer_id == known.id
    assert stored.agent_id is None
    assert stored.text == (
        "Пропущенный звонок в очередь support: абонент положил трубку через 45 с ожидания"
    )
    async with sessions() as session:
        customer = await session.get(Customer, known.id)
    assert customer is not None and customer.display_name == "Жанна Ёлкина (VIP)"
    assert await count(sessions, Customer) == 1


async def test_withheld_numbers_get_a_fresh_profile_each_without_identity(sessions):
    [missed] = ended_calls("missed_before_queue.txt")
    second = replace(
        missed,
        linkedid="1795819999.40",
        queue="support",
        caller_number="",
        caller_name="",
        wait_seconds=9,
        outcome=CallOutcome.TIMEOUT,
    )

    async with unit_of_work(sessions) as session:
        first = await store_call(session, missed)
        again = await store_call(session, second)

    assert first.customer_id != again.customer_id
    assert first.text == (
        "Пропущенный звонок: абонент положил трубку, не дождавшись очереди (номер скрыт)"
    )
    assert (
        again.text == "Пропущенный звонок в очередь support: никто не ответил за 9 с (номер скрыт)"
    )
    assert await count(sessions, Identity) == 0
    async with sessions() as session:
        call = await session.get(Call, first.id)
        customer = await session.get(Customer, first.customer_id)
    assert call is not None and call.caller_number == "anonymous"
    assert customer is not None and customer.display_name == ""  # "Anonymous" is no name


async def test_storing_the_same_linkedid_again_returns_the_first_record(sessions):
    [ended] = ended_calls("second_agent_answers.txt")
    async with unit_of_work(sessions) as session:
        first = await store_call(session, ended)
    async with unit_of_work(sessions) as session:
        second = await store_call(session, ended)

    assert second.id == first.id
    assert (await count(sessions, Interaction), await count(sessions, Call)) == (1, 1)


async def test_two_processes_racing_store_one_record(sessions):
    [ended] = ended_calls("answered_call.txt")

    async def store() -> int:
        async with unit_of_work(sessions) as session:
            return (await store_call(session, ended)).id

    first, second = await asyncio.gather(store(), store())

    assert first == second
    assert (await count(sessions, Interaction), await count(sessions, Call)) == (1, 1)
    assert await count(sessions, Customer) == 1


async def test_redelivery_after_a_restart_stores_nothing_twice(sessions):
    """A restarted process replays the same AMI history into a new LiveState."""
    for _ in range(2):
        calls = ended_calls("reconnect_resync.txt")
        assert len(calls) == 4
        for ended in calls:
            async with unit_of_work(sessions) as session:
                await store_call(session, ended)

    assert (await count(sessions, Interaction), await count(sessions, Call)) == (4, 4)
    async with sessions() as session:
        rows = await session.execute(select(Call.linkedid, Call.outcome))
        outcomes = {linkedid: outcome for linkedid, outcome in rows}
    assert outcomes == {
        "1795819400.12": CallOutcome.ANSWERED,
        "1795819401.13": CallOutcome.ABANDONED,
        "1795819402.14": CallOutcome.ABANDONED,
        "1795819412.16": CallOutcome.ANSWERED,
    }


async def test_recorder_stores_what_the_bus_publishes_once(sessions):
    agents = await add_agents(sessions)
    bus = Bus()
    recorder = CallRecorder(sessions)
    recorder.subscribe(bus)
    recorded: list[CallRecorded] = []

    async def collect(event: CallRecorded) -> None:
        recorded.append(event)

    bus.subscribe(CallRecorded, collect)
    recorder.start()
    try:
        for name in ("answered_call.txt", "caller_abandons.txt", "answered_call.txt"):
            for ended in ended_calls(name):
                bus.publish(ended)
        await bus.drain()
        await asyncio.wait_for(recorder.drain(), 30)
        await bus.drain()
    finally:
        await recorder.stop()

    assert (await count(sessions, Interaction), await count(sessions, Call)) == (3, 3)
    assert recorder.pending == 0
    # Published once per stored call, not for the second delivery of the answered one.
    assert [(r.linkedid, r.outcome, r.agent_id) for r in recorded] == [
        ("1795818927.2", CallOutcome.ANSWERED, agents["PJSIP/1001"]),
        ("1795819000.4", CallOutcome.ABANDONED, None),
        ("1795819002.5", CallOutcome.ABANDONED, None),
    ]


class FlakyTcpProxy:
    """A relay to a TCP service that can be taken down (connections refused and cut)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.up = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if not self.up:
            client_w.close()
            return
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {client_w, server_w}

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
            writer.close()

        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w))

    def down(self) -> None:
        self.up = False
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def stop(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_recorder_keeps_records_while_postgresql_is_unreachable():
    calls = ended_calls("reconnect_resync.txt")
    async with postgres_database() as url:
        await upgrade_async(url)
        proxy = FlakyTcpProxy(make_url(url).port or 5432)
        await proxy.start()
        engine = create_engine(make_url(url).set(port=proxy.port).render_as_string(False))
        direct = create_engine(url)
        recorder = CallRecorder(session_factory(engine), backoff=(0.05, 0.2))
        bus = Bus()
        recorder.subscribe(bus)
        recorder.start()
        try:
            proxy.down()
            for ended in calls:
                bus.publish(ended)
            await bus.drain()
            await asyncio.sleep(1.0)  # several failed attempts
            assert recorder.pending == 4
            assert await count(session_factory(direct), Interaction) == 0

            proxy.up = True
            await asyncio.wait_for(recorder.drain(), 30)
            bus.publish(calls[0])  # a late duplicate
            await bus.drain()
            await asyncio.wait_for(recorder.drain(), 30)

            assert await count(session_factory(direct), Interaction) == 4
            assert await count(session_factory(direct), Call) == 4
        finally:
            await recorder.stop()
            await proxy.stop()
            await engine.dispose()
            await direct.dispose()

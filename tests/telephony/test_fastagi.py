"""FastAGI: the caller lookup on both databases, the server's defences, and real calls whose
channel variables Asterisk reports in AMI events."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.channels.telephony.amiframes import AmiEvent
from callcenter.channels.telephony.fastagi import (
    APPLICATION_NAME,
    AgiRequest,
    AgiResult,
    CallerLookups,
    FastAgiServer,
    lookup_route,
    run_agi_server,
)
from callcenter.channels.telephony.lookup import CallerInfo, lookup_caller, sanitize_name
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.channels.telephony.routing import QueueNumbers
from callcenter.config import Settings
from callcenter.db import unit_of_work
from callcenter.domain.customers import attach_identity, create_customer
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Customer,
    Direction,
    IdentityKind,
    Interaction,
    Queue,
    Role,
    Ticket,
    TicketStatus,
    User,
)
from tests.telephony.conftest import CUSTOMER_NUMBER, OUR_NUMBER, Ami, Pbx

pg_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
XSS_NAME = '"><img src=x onerror=alert(1)>'
START = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


async def add_agent(session: AsyncSession, username: str, endpoint: str, **kw: object) -> User:
    agent = User(username=username, role=Role.AGENT, sip_endpoint=endpoint, **kw)
    session.add(agent)
    await session.flush()
    return agent


async def add_customer(
    session: AsyncSession, name: str, number: str = CUSTOMER_NUMBER, language: str = "ru"
) -> Customer:
    customer = await create_customer(session, name, language)
    await attach_identity(session, customer, IdentityKind.PHONE, number)
    return customer


async def add_call(
    session: AsyncSession,
    customer: Customer,
    agent: User | None,
    at: datetime,
    outcome: CallOutcome = CallOutcome.ANSWERED,
) -> None:
    interaction = Interaction(
        customer_id=customer.id,
        channel=Channel.CALL,
        direction=Direction.INBOUND,
        external_id=f"linked-{at.timestamp()}",
        occurred_at=at,
    )
    session.add(interaction)
    await session.flush()
    session.add(
        Call(
            interaction_id=interaction.id,
            linkedid=interaction.external_id,
            agent_id=agent.id if agent else None,
            outcome=outcome,
            started_at=at,
        )
    )
    await session.flush()


async def add_ticket(session: AsyncSession, customer: Customer, status: TicketStatus) -> None:
    session.add(Ticket(customer_id=customer.id, status=status, channel=Channel.CALL))
    await session.flush()


# ---- The lookup, on SQLite and PostgreSQL ----------------------------------------------------


async def test_known_caller_with_open_ticket_gets_priority_and_last_agent(sessions) -> None:
    async with unit_of_work(sessions) as session:
        first = await add_agent(session, "anna", "PJSIP/1001")
        second = await add_agent(session, "boris", "PJSIP/1002")
        customer = await add_customer(session, "Иван Петров")
        await add_call(session, customer, second, START)
        await add_call(session, customer, first, START + timedelta(days=1))
        await add_call(session, customer, second, START + timedelta(days=2), CallOutcome.MISSED)
        await add_ticket(session, customer, TicketStatus.SOLVED)
        await add_ticket(session, customer, TicketStatus.OPEN)

    async with sessions() as session:
        info = await lookup_caller(session, "8 (916) 123-45-67", "whatever the network says")

    assert info.variables() == {
        "CC_CUSTOMER_ID": str(customer.id),
        "CALLERID(name)": "Иван Петров",
        "CC_LANGUAGE": "ru",
        "CC_QUEUE_PRIO": "5",
        "CC_PREFERRED_AGENT": "PJSIP/1001",
    }


async def test_only_this_customers_calls_and_present_agents_count(sessions) -> None:
    async with unit_of_work(sessions) as session:
        gone = await add_agent(session, "gone", "PJSIP/1003", active=False)
        other_agent = await add_agent(session, "olga", "PJSIP/1004")
        customer = await add_customer(session, "Jane Doe", language="en")
        await add_call(session, customer, gone, START)
        await add_ticket(session, customer, TicketStatus.CLOSED)
        someone_else = await add_customer(session, "Пётр", number="+79035551234")
        await add_call(session, someone_else, other_agent, START + timedelta(days=3))
        await add_ticket(session, someone_else, TicketStatus.OPEN)

    async with sessions() as session:
        info = await lookup_caller(session, "+7 916 123 45 67")

    assert info.customer_id == customer.id
    assert info.language == "en"
    assert info.queue_priority == 1
    assert info.preferred_agent == ""


@pytest.mark.parametrize("number", ["", "anonymous", "unknown", "+7 916", "<script>", "1" * 60])
async def test_anonymous_or_unparseable_number_is_unknown(sessions, number: str) -> None:
    async with sessions() as session:
        info = await lookup_caller(session, number, 'Bad\r\n"Name"')
    assert info.variables() == {
        "CC_CUSTOMER_ID": "unknown",
        "CALLERID(name)": "Bad Name",
        "CC_LANGUAGE": "",
        "CC_QUEUE_PRIO": "0",
        "CC_PREFERRED_AGENT": "",
    }


async def test_unknown_number_keeps_the_network_name_cleaned(sessions) -> None:
    async with sessions() as session:
        info = await lookup_caller(session, "+79035550000", "Мария\x00 <Сидорова>")
    assert info.customer_id is None
    assert info.display_name == "Мария Сидорова"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (XSS_NAME, "img src=x onerror=alert(1)"),
        ("Иван\nПетров\r\nSet: x", "Иван Петров Set: x"),
        ("  'Ёлкина'  \t Жанна\u200b\x7f ", "Ёлкина Жанна"),
        ("Back\\slash; pipe|", "Backslash pipe"),
        ("Я" * 100, "Я" * 40),
        ("\x00\x1b[31m", "[31m"),
    ],
)
def test_display_names_are_made_harmless(raw: str, clean: str) -> None:
    assert sanitize_name(raw) == clean


# ---- The server's defences, over raw TCP ------------------------------------------------------


@pytest.fixture
async def lookups(sessions, database_url: str) -> AsyncIterator[CallerLookups]:
    lookups = CallerLookups(database_url)
    try:
        yield lookups
    finally:
        await lookups.dispose()


@pytest.fixture
async def agi_server(lookups: CallerLookups) -> AsyncIterator[FastAgiServer]:
    server = FastAgiServer({"lookup": lookup_route(lookups)}, port=0, header_timeout=0.5)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def agi_session(port: int, headers: bytes) -> list[str]:
    """Speak AGI as Asterisk does, answering every command with 200; the commands sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(headers)
    commands = []
    async with asyncio.timeout(5):
        while line := await reader.readline():
            commands.append(line.decode().rstrip("\n"))
            writer.write(b"200 result=1\n")
    writer.close()
    return commands


def env(number: str, name: str = "", route: str = "lookup", dialled: str = "") -> bytes:
    lines = [
        "agi_network: yes",
        f"agi_arg_1: {dialled}",
        f"agi_network_script: {route}",
        "agi_request: agi://127.0.0.1/lookup",
        "agi_channel: PJSIP/trunk-00000001",
        f"agi_callerid: {number}",
        f"agi_calleridname: {name}",
    ]
    return ("\n".join(lines) + "\n\n").encode()


async def test_lookup_route_sets_quoted_variables(agi_server, sessions) -> None:
    async with unit_of_work(sessions) as session:
        customer = await add_customer(session, XSS_NAME)

    commands = await agi_session(agi_server.port, env(CUSTOMER_NUMBER, "x"))

    # One command: every round trip to Asterisk counts. The empty CC_PREFERRED_AGENT is
    # left unset (MSet skips empty values; the dialplan reads it as empty either way).
    assert commands == [
        f'EXEC MSet "CC_CUSTOMER_ID={customer.id},CC_LANGUAGE=ru,CC_QUEUE_PRIO=1,'
        r'CALLERID(name)=img src=x onerror=alert\\(1\\)"',
    ]


async def test_the_dialled_number_names_the_queue_in_the_same_command(sessions) -> None:
    async with unit_of_work(sessions) as session:
        session.add(Queue(name="billing", inbound_number="74957654321"))
        session.add(Queue(name="sales"))
    numbers = QueueNumbers(sessions)
    await numbers.refresh()

    class Lookups:
        async def lookup(self, number: str, name: str = "") -> CallerInfo:
            return CallerInfo(display_name=name)

    server = FastAgiServer({"lookup": lookup_route(Lookups(), numbers)}, port=0)  # type: ignore[arg-type]
    await server.start()
    try:
        for dialled in ("74957654321", "+74957654321"):
            commands = await agi_session(server.port, env("", "Анна", dialled=dialled))
            assert commands == [
                'EXEC MSet "CC_CUSTOMER_ID=unknown,CC_QUEUE_PRIO=0,CALLERID(name)=Анна,'
                'CC_QUEUE=billing"'
            ]
        # No number, another number, a number with junk: no CC_QUEUE (the dialplan's support).
        for dialled in ("", "74951234567", "74957654321;x", "84957654321"):
            commands = await agi_session(server.port, env("", "Анна", dialled=dialled))
            assert commands == [
                'EXEC MSet "CC_CUSTOMER_ID=unknown,CC_QUEUE_PRIO=0,CALLERID(name)=Анна"'
            ]
    finally:
        await server.stop()


async def test_a_failed_caller_lookup_still_routes_by_the_dialled_number(sessions) -> None:
    async with unit_of_work(sessions) as session:
        session.add(Queue(name="billing", inbound_number="74957654321"))
    numbers = QueueNumbers(sessions)
    await numbers.refresh()

    class Broken:
        async def lookup(self, number: str, name: str = "") -> CallerInfo:
            raise OSError("database down")

    server = FastAgiServer({"lookup": lookup_route(Broken(), numbers)}, port=0)  # type: ignore[arg-type]
    await server.start()
    try:
        commands = await agi_session(server.port, env(CUSTOMER_NUMBER, dialled="74957654321"))
    finally:
        await server.stop()
    assert commands == ['EXEC MSet "CC_CUSTOMER_ID=unknown,CC_QUEUE=billing"']


async def test_queue_numbers_follow_the_table_and_keep_the_last_good_map(sessions) -> None:
    numbers = QueueNumbers(sessions)
    await numbers.refresh()
    assert numbers.queue_for("74957654321") == ""
    async with unit_of_work(sessions) as session:
        session.add(Queue(name="billing", inbound_number="74957654321"))
        session.add(Queue(name="Bad Name;x", inbound_number="74950000000"))  # never from the UI
    await numbers.refresh()
    assert numbers.queue_for("+74957654321") == "billing"
    assert numbers.queue_for("74950000000") == ""  # not a queue name: never handed out
    assert numbers.queue_for("7495765432") == ""

    class Down:
        def __call__(self) -> object:
            raise OSError("database down")

    numbers._sessions = Down()  # type: ignore[assignment]
    await numbers.refresh()
    assert numbers.queue_for("74957654321") == "billing"


@pytest.mark.parametrize(
    ("value", "command"),
    [
        ("Петров, Иван", r'EXEC MSet "CALLERID(name)=Петров\\, Иван"'),
        ("a (b [c", r'EXEC MSet "CALLERID(name)=a \\(b \\[c"'),
        ('say "hi" \\ bye', r'EXEC MSet "CALLERID(name)=say \\\"hi\\\" \\\\ bye"'),
    ],
)
async def test_values_are_escaped_for_the_agi_line_and_for_mset(value: str, command: str) -> None:
    sent = []

    class Recorder(AgiRequest):
        async def command(self, line: str) -> AgiResult:
            sent.append(line)
            return AgiResult(200, "0")

    request = Recorder({}, None, None, 1.0)  # type: ignore[arg-type]
    await request.set_variables({"CALLERID(name)": value, "CC_LANGUAGE": ""})
    assert sent == [command]


async def test_each_command_waits_for_the_answer_to_the_previous_one() -> None:
    """Asterisk would never see a second command sent before it answered the first."""

    async def two_commands(request: AgiRequest) -> None:
        await request.set_variable("A", "1")
        await request.set_variables({"B": "2", "C": "3"})

    server = FastAgiServer({"two": two_commands}, port=0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(env("+79035550000", "Анна", route="two"))
        commands = []
        async with asyncio.timeout(10):
            while line := await reader.readline():
                commands.append(line.decode().rstrip("\n"))
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await reader.readline()
                writer.write(b"200 result=1\n")
        writer.close()
    finally:
        await server.stop()
    assert commands == ['SET VARIABLE A "1"', 'EXEC MSet "B=2,C=3"']


@pg_only
async def test_a_dropped_database_connection_costs_one_retry_not_the_lookup(
    agi_server, lookups: CallerLookups, sessions
) -> None:
    async with unit_of_work(sessions) as session:
        customer = await add_customer(session, "Иван Петров")
    await lookups.start()  # a warm pool: the connection the next lookup reuses
    async with sessions() as session:
        killed = await session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": APPLICATION_NAME},
        )
    assert killed

    commands = await agi_session(agi_server.port, env(CUSTOMER_NUMBER))

    assert commands == [
        f'EXEC MSet "CC_CUSTOMER_ID={customer.id},CC_LANGUAGE=ru,CC_QUEUE_PRIO=1,'
        'CALLERID(name)=Иван Петров"'
    ]


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(3):
            return await reader.read() == b""
    except ConnectionResetError:
        return True


async def test_peers_that_are_not_agi_do_not_block_the_server(agi_server) -> None:
    port = agi_server.port
    # Closes before the blank line ending its headers.
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network: yes\n")
    writer.close()
    # Never finishes its headers: dropped after header_timeout.
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)
    slow_writer.write(b"agi_network: yes\n")
    # Sends an endless header line.
    big_reader, big_writer = await asyncio.open_connection("127.0.0.1", port)
    big_writer.write(b"agi_x: " + b"a" * 100_000)
    # Not AGI at all.
    assert await agi_session(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []
    # An unknown route gets no commands.
    assert await agi_session(port, env(CUSTOMER_NUMBER, route="../etc/passwd")) == []

    # Meanwhile a real lookup is served at once.
    async with asyncio.timeout(2):
        commands = await agi_session(port, env("anonymous"))
    assert commands[0].startswith('EXEC MSet "CC_CUSTOMER_ID=unknown,')
    assert await closed_by_server(slow_reader)
    assert await closed_by_server(big_reader)
    slow_writer.close()
    big_writer.close()


async def test_run_agi_server_serves_until_stopped(sessions, database_url: str) -> None:
    settings = Settings(database_url=database_url, agi_port=free_port())
    stop = asyncio.Event()
    server = asyncio.create_task(run_agi_server(settings, sessions, stop))
    async with asyncio.timeout(5):
        while True:
            try:
                commands = await agi_session(settings.agi_port, env("+79035550000", "Анна"))
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.05)
    assert commands[0].endswith(',CALLERID(name)=Анна"')

    stop.set()
    await asyncio.wait_for(server, 5)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", settings.agi_port)


def test_the_server_refuses_to_listen_beyond_loopback() -> None:
    for host in ("0.0.0.0", "::", "8.8.8.8"):
        with pytest.raises(ValueError, match="loopback or private"):
            FastAgiServer({}, host=host)
    # The private network that docker-compose.yml gives the app is allowed.
    assert FastAgiServer({}, host="172.28.53.20").host == "172.28.53.20"


# ---- Real calls through Asterisk --------------------------------------------------------------


def chanvars(event: AmiEvent) -> dict[str, str]:
    return dict(v.split("=", 1) for v in event.values("ChanVariable"))


@pytest.fixture
async def pbx_agi(pbx: Pbx, ami: Ami, lookups: CallerLookups) -> AsyncIterator[FastAgiServer]:
    """The FastAGI server on the port the dialplan calls; agent 1001 alone available."""
    for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
        response = await ami.client.send_action(
            {"Action": "QueuePause", "Queue": "support", "Interface": interface, "Paused": paused}
        )
        assert response.ok, response.headers
    server = FastAgiServer({"lookup": lookup_route(lookups)}, port=pbx.process.settings.agi_port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def call_in(pbx: Pbx, start_sipp, agent_scenario: str, *agent_args: str) -> None:
    agent_phone = await start_sipp(agent_scenario, pbx.agent_ports["1001"], *agent_args)
    customer = await start_sipp(
        "customer_call.xml",
        free_port(socket.SOCK_DGRAM),
        "-s", OUR_NUMBER, "-d", "1500", f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip
    customer_code, customer_report = await customer.finish()
    agent_code, agent_report = await agent_phone.finish()
    assert customer_code == 0, customer_report
    assert agent_code == 0, agent_report


@pytest.mark.asterisk
@pg_only
async def test_a_known_customer_rings_the_last_agent_first_with_a_clean_name(
    pbx, ami, pbx_agi, sessions, start_sipp
) -> None:
    async with unit_of_work(sessions) as session:
        agent = await add_agent(session, "anna", "PJSIP/1001")
        customer = await add_customer(session, XSS_NAME)
        await add_call(session, customer, agent, START)
        await add_ticket(session, customer, TicketStatus.PENDING)
    since = ami.log.mark()

    await call_in(pbx, start_sipp, "agent_answer.xml", "-d", "300")

    [dial] = await ami.log.wait_for(since, "DialBegin", CallerIDNum=CUSTOMER_NUMBER)
    assert dial.headers["DestChannel"].startswith("PJSIP/1001-")
    assert dial.headers["CallerIDName"] == "img src=x onerror=alert(1)"
    assert chanvars(dial) == {
        "CC_CUSTOMER_ID": str(customer.id),
        "CC_QUEUE_PRIO": "5",
        "CC_PREFERRED_AGENT": "PJSIP/1001",
        "CC_LANGUAGE": "ru",
    }
    # The preferred agent answered: the call never waited in the queue.
    linkedid = dial.headers["Linkedid"]
    assert not ami.log.matching(since, "QueueCallerJoin", Linkedid=linkedid)
    await ami.log.wait_for(since, "DialEnd", Linkedid=linkedid, DialStatus="ANSWER")


@pytest.mark.asterisk
@pg_only
async def test_a_caller_without_history_queues_with_the_lookup_variables(
    pbx, ami, pbx_agi, sessions, start_sipp
) -> None:
    async with unit_of_work(sessions) as session:
        customer = await add_customer(session, "Иван\nПетров\r\nX-Injected: yes")
    since = ami.log.mark()

    await call_in(pbx, start_sipp, "agent_answer.xml", "-d", "300")

    [join] = await ami.log.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
    assert join.headers["CallerIDName"] == "Иван Петров X-Injected: yes"
    assert chanvars(join) == {
        "CC_CUSTOMER_ID": str(customer.id),
        "CC_QUEUE_PRIO": "1",
        "CC_PREFERRED_AGENT": "",
        "CC_LANGUAGE": "ru",
    }
    [called] = await ami.log.wait_for(since, "AgentCalled", Linkedid=join.headers["Linkedid"])
    assert chanvars(called)["CC_CUSTOMER_ID"] == str(customer.id)


@pytest.mark.asterisk
@pg_only
async def test_commas_brackets_and_equals_in_a_name_reach_the_channel_whole(
    pbx, ami, pbx_agi, sessions, start_sipp
) -> None:
    """All variables go in one MSet: its argument syntax must not split or eat the name."""
    name = "Петров, Иван (VIP [1 =x) $"
    async with unit_of_work(sessions) as session:
        customer = await add_customer(session, name, language="")
    since = ami.log.mark()

    await call_in(pbx, start_sipp, "agent_answer.xml", "-d", "300")

    [join] = await ami.log.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
    assert join.headers["CallerIDName"] == name
    assert chanvars(join) == {
        "CC_CUSTOMER_ID": str(customer.id),
        "CC_QUEUE_PRIO": "1",
        "CC_PREFERRED_AGENT": "",
        "CC_LANGUAGE": "",
    }


@pytest.mark.asterisk
@pg_only
async def test_a_stranger_is_unknown_and_keeps_the_network_name(
    pbx, ami, pbx_agi, start_sipp
) -> None:
    since = ami.log.mark()

    await call_in(pbx, start_sipp, "agent_answer.xml", "-d", "300")

    [join] = await ami.log.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
    assert join.headers["CallerIDName"] == "Иван Петров"
    assert chanvars(join)["CC_CUSTOMER_ID"] == "unknown"
    assert chanvars(join)["CC_QUEUE_PRIO"] == "0"


@pytest.fixture
async def routed_agi(
    pbx: Pbx, ami: Ami, lookups: CallerLookups, sessions
) -> AsyncIterator[QueueNumbers]:
    """The FastAGI server with queue numbers; agent 1001 alone available, in support and
    (logged in for the test) in sales."""
    for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
        response = await ami.client.send_action(
            {"Action": "QueuePause", "Queue": "support", "Interface": interface, "Paused": paused}
        )
        assert response.ok, response.headers
    added = await ami.client.send_action(
        {"Action": "QueueAdd", "Queue": "sales", "Interface": "PJSIP/1001"}, as_list=False
    )
    assert added.ok, added.headers
    numbers = QueueNumbers(sessions)
    route = lookup_route(lookups, numbers)
    server = FastAgiServer({"lookup": route}, port=pbx.process.settings.agi_port)
    await server.start()
    try:
        yield numbers
    finally:
        await server.stop()
        await ami.client.send_action(
            {"Action": "QueueRemove", "Queue": "sales", "Interface": "PJSIP/1001"}, as_list=False
        )


async def call_number(pbx: Pbx, start_sipp, dialled: str) -> None:
    agent_phone = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    customer = await start_sipp(
        "customer_call.xml",
        free_port(socket.SOCK_DGRAM),
        "-s", dialled, "-d", "1500", f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip
    for process in (customer, agent_phone):
        code, report = await process.finish()
        assert code == 0, report


@pytest.mark.asterisk
@pg_only
async def test_the_dialled_number_picks_the_queue_and_anything_else_goes_to_support(
    pbx, ami, routed_agi: QueueNumbers, sessions, start_sipp
) -> None:
    async with unit_of_work(sessions) as session:
        session.add(Queue(name="sales", inbound_number="74957654321"))
        # Saved on the screen but never loaded by Asterisk: its callers are not lost.
        session.add(Queue(name="ghost", inbound_number="74950000001"))
    await routed_agi.refresh()

    for dialled, queue in (
        ("+74957654321", "sales"),
        (OUR_NUMBER, "support"),
        ("74950000001", "support"),
    ):
        since = ami.log.mark()
        await call_number(pbx, start_sipp, dialled)
        [join] = await ami.log.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
        assert join.headers["Queue"] == queue, dialled
        await ami.log.wait_for(
            since, "AgentConnect", Queue=queue, Linkedid=join.headers["Linkedid"]
        )


@pytest.mark.asterisk
async def test_a_queue_variable_that_is_no_queue_name_never_reaches_queue(
    pbx, ami, start_sipp
) -> None:
    """Defence in depth: whatever CC_QUEUE holds (the AGI hands out checked names only), the
    dialplan queues only a valid name, else support."""
    for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
        response = await ami.client.send_action(
            {"Action": "QueuePause", "Queue": "support", "Interface": interface, "Paused": paused}
        )
        assert response.ok, response.headers
    hostile = iter(["sales,c,,,1", "sales:Hangup()", "Sales", "sales)"])

    async def route(request: AgiRequest) -> None:
        await request.set_variables({"CC_CUSTOMER_ID": "unknown", "CC_QUEUE": next(hostile)})

    server = FastAgiServer({"lookup": route}, port=pbx.process.settings.agi_port)
    await server.start()
    try:
        for _ in range(4):
            since = ami.log.mark()
            await call_number(pbx, start_sipp, OUR_NUMBER)
            [join] = await ami.log.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
            assert join.headers["Queue"] == "support"
    finally:
        await server.stop()

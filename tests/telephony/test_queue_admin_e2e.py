"""End to end with the real Asterisk 22 and ``callcenter serve``: a queue created on
/admin/queues exists in Asterisk after the reload with its strategy, limits and static members
(QueueStatus, QueueSummary); an edit changes them and keeps an agent who logged in himself; a
delete removes the queue; the shipped queues of queues.conf are untouched throughout."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from callcenter.channels.telephony.ami import AmiClient
from callcenter.channels.telephony.pbx import AsteriskProcess
from callcenter.channels.telephony.pbxconfig import PbxSettings, free_port
from callcenter.models import Call, CallOutcome, Queue, QueueMember, Role, User
from callcenter.passwords import hash_password
from tests.telephony.conftest import AGENT_PHONES, CUSTOMER_NUMBER, OUR_NUMBER, EventLog, Pbx
from tests.telephony.product import running_product
from tests.web.helpers import HTML, Visitor

pytestmark = pytest.mark.asterisk


@pytest.fixture(scope="module")
async def own_pbx() -> AsyncIterator[Pbx]:
    """A private Asterisk: the queues created here stay out of the shared one. Its agents'
    phones are sipp on free ports, as in the shared one."""
    agent_ports = {agent: free_port(socket.SOCK_DGRAM) for agent in AGENT_PHONES}
    contacts = {agent: f"sip:{agent}@127.0.0.1:{port}" for agent, port in agent_ports.items()}
    async with AsteriskProcess(PbxSettings.ephemeral(agent_contacts=contacts)) as process:
        yield Pbx(process, agent_ports)


@pytest.fixture(scope="module")
async def events() -> EventLog:
    return EventLog()


@pytest.fixture(scope="module")
async def ami(own_pbx: Pbx, events: EventLog) -> AsyncIterator[AmiClient]:
    settings = own_pbx.process.settings
    client = AmiClient("127.0.0.1", settings.ami_port, settings.ami_username, settings.ami_secret)
    client.add_listener(events)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


@pytest.fixture
async def admin(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    own_pbx: Pbx,
    tmp_path: Path,
) -> AsyncIterator[Visitor]:
    async with sessions() as db, db.begin():
        db.add(User(username="root", role=Role.ADMIN, password_hash=hash_password("password-root")))
        for extension, name in (("1001", "Анна"), ("1002", "Борис")):
            db.add(
                User(
                    username=f"agent{extension}",
                    display_name=name,
                    role=Role.AGENT,
                    password_hash=hash_password(f"password-agent{extension}"),
                    sip_endpoint=f"PJSIP/{extension}",
                )
            )
    managed = own_pbx.process.etc_dir / "queues_managed.conf"
    async with running_product(
        database_url,
        own_pbx,
        tmp_path,
        queues_config_path=str(managed),
        agi_port=own_pbx.process.settings.agi_port,  # the lookup the dialplan calls
    ) as base:
        root = Visitor(URL(base))
        try:
            assert (await root.login("root")).status == 303
            yield root
        finally:
            await root.close()


async def queue_status(ami: AmiClient, queue: str) -> tuple[dict[str, str], dict[str, Any]]:
    """QueueParams of ``queue`` and its members: interface -> (penalty, static?)."""
    response = await ami.send_action({"Action": "QueueStatus", "Queue": queue}, timeout=15)
    params = [e for e in response.events if e.get("Event") == "QueueParams"]
    members = {
        (e.get("Interface") or e["Location"]): (int(e["Penalty"]), e["Membership"] == "static")
        for e in response.events
        if e.get("Event") == "QueueMember" and e.get("Queue") == queue
    }
    return (params[0] if params else {}), members


async def summary_queues(ami: AmiClient) -> set[str]:
    response = await ami.send_action({"Action": "QueueSummary"}, timeout=15)
    return {e["Queue"] for e in response.events if e.get("Event") == "QueueSummary"}


FORM = {
    "name": "billing",
    "display_name": "Оплата",
    "service_level_seconds": "25",
    "strategy": "leastrecent",
    "ring_timeout_seconds": "20",
    "wrapup_seconds": "7",
    "max_callers": "4",
    "member": "PJSIP/1001",
    "penalty:PJSIP/1001": "2",
}


async def test_a_queue_made_on_the_screen_lives_in_asterisk_until_it_is_deleted(
    admin: Visitor, ami: AmiClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shipped = await summary_queues(ami)
    assert {"support", "sales"} <= shipped and "billing" not in shipped
    created = await admin.post_form("/admin/queues", {**FORM, "member": "PJSIP/1001"})
    assert created.status == 303 and created.headers["Location"].endswith("?notice=applied")
    params, members = await queue_status(ami, "billing")
    assert (params.get("Strategy"), params.get("Max"), params.get("ServiceLevel")) == (
        "leastrecent",
        "4",
        "25",
    )
    assert members == {"PJSIP/1001": (2, True)}
    assert await summary_queues(ami) == shipped | {"billing"}

    # An agent logs in by himself (a dynamic member): an edit does not throw him out.
    added = await ami.send_action(
        {"Action": "QueueAdd", "Queue": "billing", "Interface": "PJSIP/1003"}, as_list=False
    )
    assert added.ok, added.headers
    async with sessions() as db:
        queue_id = (await db.scalars(select(Queue.id).where(Queue.name == "billing"))).one()
    edit = {
        **FORM,
        "strategy": "ringall",
        "max_callers": "0",
        "member": "PJSIP/1002",
        "penalty:PJSIP/1002": "1",
    }
    edit.pop("penalty:PJSIP/1001")
    saved = await admin.post_form(f"/admin/queues/{queue_id}", edit)
    assert saved.status == 303 and saved.headers["Location"].endswith("?notice=applied")
    params, members = await queue_status(ami, "billing")
    assert (params.get("Strategy"), params.get("Max")) == ("ringall", "0")
    assert members == {"PJSIP/1002": (1, True), "PJSIP/1003": (0, False)}
    page = await (await admin.get("/admin/queues", headers=HTML)).text()
    assert 'data-queue="billing"' in page

    _, support = await queue_status(ami, "support")
    assert {"PJSIP/1001", "PJSIP/1002"} <= set(support)  # queues.conf's members stay
    deleted = await admin.post_form(f"/admin/queues/{queue_id}/delete", {})
    assert deleted.status == 303 and deleted.headers["Location"].endswith("?notice=applied")
    assert await summary_queues(ami) == shipped
    _, support_after = await queue_status(ami, "support")
    assert support_after == support


async def call_number(own_pbx: Pbx, start_sipp: Any, dialled: str) -> None:
    """A customer dials ``dialled``; agent 1001's phone answers whatever queue rings it."""
    phone = await start_sipp("agent_answer.xml", own_pbx.agent_ports["1001"], "-d", "300")
    caller = await start_sipp(
        "customer_call.xml", free_port(socket.SOCK_DGRAM), "-s", dialled, "-d", "1500",
        f"127.0.0.1:{own_pbx.process.sip_port}",
    )  # fmt: skip
    for process in (caller, phone):
        code, report = await process.finish()
        assert code == 0, report


async def recorded_call(sessions: async_sessionmaker[AsyncSession], linkedid: str) -> Call:
    async with asyncio.timeout(15):
        while True:
            async with sessions() as db:
                call = await db.scalar(select(Call).where(Call.linkedid == linkedid))
            if call is not None:
                return call
            await asyncio.sleep(0.2)


async def test_a_call_to_a_queues_number_reaches_that_queue_and_other_numbers_reach_support(
    admin: Visitor,
    ami: AmiClient,
    events: EventLog,
    own_pbx: Pbx,
    sessions: async_sessionmaker[AsyncSession],
    start_sipp: Any,
) -> None:
    paused = await ami.send_action(
        {"Action": "QueuePause", "Queue": "support", "Interface": "PJSIP/1002", "Paused": "true"},
        as_list=False,
    )
    assert paused.ok, paused.headers  # 1002's phone is not running: only 1001 answers
    # No wrap-up: 1001 takes the next call at once (shared_lastcall spans the queues).
    form = {
        **FORM,
        "name": "returns",
        "inbound_number": "+7 (495) 765-43-21",
        "wrapup_seconds": "0",
    }
    created = await admin.post_form("/admin/queues", form)
    assert created.status == 303 and created.headers["Location"].endswith("?notice=applied")

    for dialled, queue in (("74957654321", "returns"), (OUR_NUMBER, "support")):
        # After the first call the caller's last agent would ring first, outside any queue;
        # his account is closed so that the second call goes through a queue too.
        async with sessions() as db, db.begin():
            agent = await db.scalar(select(User).where(User.username == "agent1001"))
            assert agent is not None
            agent.active = queue == "returns"
        since = events.mark()
        await call_number(own_pbx, start_sipp, dialled)
        [join] = await events.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
        assert join.headers["Queue"] == queue, dialled
        call = await recorded_call(sessions, join.headers["Linkedid"])
        assert (call.queue, call.outcome, call.agent_endpoint) == (
            queue,
            CallOutcome.ANSWERED,
            "PJSIP/1001",
        )


async def test_serve_applies_a_queue_that_was_saved_but_never_applied_when_it_starts(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    own_pbx: Pbx,
    ami: AmiClient,
    tmp_path: Path,
) -> None:
    """The save happened while Asterisk was away ("saved, not applied"): only the row exists."""
    async with sessions() as db, db.begin():
        queue = Queue(name="healed", managed=True, strategy="linear", max_callers=3)
        queue.members = [QueueMember(interface="PJSIP/1002", penalty=4, member_name="Boris")]
        db.add(queue)
    assert "healed" not in await summary_queues(ami)
    managed = own_pbx.process.etc_dir / "queues_managed.conf"
    async with running_product(database_url, own_pbx, tmp_path, queues_config_path=str(managed)):
        async with asyncio.timeout(15):
            while "healed" not in await summary_queues(ami):
                await asyncio.sleep(0.2)
        params, members = await queue_status(ami, "healed")
        assert (params.get("Strategy"), params.get("Max")) == ("linear", "3")
        assert members == {"PJSIP/1002": (4, True)}
    async with sessions() as db, db.begin():
        await db.delete(await db.get(Queue, queue.id))
    # The next start writes the file without it: Asterisk drops the queue.
    async with running_product(database_url, own_pbx, tmp_path, queues_config_path=str(managed)):
        async with asyncio.timeout(15):
            while "healed" in await summary_queues(ami):
                await asyncio.sleep(0.2)

"""Click-to-call through the real Asterisk: the agent's sipp phone answers, then the
customer's, and ARI bridges the two legs. A call that reached the customer's side is stored
once as an outbound call in their history (answered with its talk time, busy, no answer) and
fed to the CRM as outgoing; one the agent's phone did not take is not stored."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.bus import Bus
from callcenter.channels.telephony.ari import AriClient
from callcenter.channels.telephony.clicktocall import (
    ClickToCallProgress,
    ClickToCallRequested,
    ClickToCallTimings,
    State,
)
from callcenter.channels.telephony.events import CallRecorded
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.channels.telephony.stasis import StasisApp
from callcenter.crm.feed import Feed
from callcenter.db import unit_of_work
from callcenter.models import Call, CallOutcome, Channel, Direction, Interaction, Ticket
from tests.automation.helpers import make_customer, outbox_rows
from tests.automation.test_outbound_calls import make_agent
from tests.telephony.conftest import CUSTOMER_NUMBER, Ami, Pbx

pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@dataclass
class Phones:
    app: StasisApp
    ari: AriClient
    bus: Bus
    progress: list[ClickToCallProgress]
    customer_port: int
    recorded: list[CallRecorded]
    events: list[dict[str, Any]]
    """Every ARI event the app received, to replay."""

    async def settle(self) -> None:
        """Wait for the bus's handlers, the recorder's stores and what they published."""
        await self.bus.drain()
        await asyncio.wait_for(self.app.recorder.drain(), 30)
        await self.bus.drain()

    async def wait_state(self, state: State, timeout: float = 15.0) -> ClickToCallProgress:
        async with asyncio.timeout(timeout):
            while True:
                for update in self.progress:
                    if update.state is state:
                        return update
                await asyncio.sleep(0.05)


@pytest.fixture
async def phones(pbx: Pbx, sessions) -> AsyncIterator[Phones]:
    settings = pbx.process.settings
    bus = Bus()
    progress: list[ClickToCallProgress] = []

    async def record(update: ClickToCallProgress) -> None:
        progress.append(update)

    bus.subscribe(ClickToCallProgress, record)
    recorded: list[CallRecorded] = []

    async def stored(event: CallRecorded) -> None:
        recorded.append(event)

    bus.subscribe(CallRecorded, stored)
    Feed(sessions, crm=True).subscribe(bus)
    ari = AriClient(
        f"http://127.0.0.1:{pbx.process.http_port}",
        settings.ari_username,
        settings.ari_password,
        "callcenter",
    )
    customer_port = free_port(socket.SOCK_DGRAM)
    app = StasisApp(
        ari,
        sessions,
        bus,
        # The test trunk has no provider: dial the customer's sipp phone through it directly.
        customer_dial=f"PJSIP/trunk/sip:{{number}}@127.0.0.1:{customer_port}",
        click_timings=ClickToCallTimings(agent_ring=10, customer_ring=10),
    )
    bus.subscribe(ClickToCallRequested, app.click_to_call)
    events: list[dict[str, Any]] = []

    async def seen(event: dict[str, Any]) -> None:
        events.append(event)

    ari.on_event(seen)
    await ari.start()
    try:
        yield Phones(app, ari, bus, progress, customer_port, recorded, events)
    finally:
        await bus.drain()
        await app.close()
        await ari.stop()


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Interaction, Call]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Interaction, Call).join(Call, Call.interaction_id == Interaction.id)
        )
        return [(interaction, call) for interaction, call in rows]


async def _crm_calls(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    """The call pushes queued for the CRM."""
    return [r.payload["call"] for r in await outbox_rows(sessions) if r.channel == "crm"]


async def _replay(phones: Phones) -> None:
    """Hand the app every ARI event it has had again, as after a reconnect."""
    for event in list(phones.events):
        await phones.app.handle(event)


async def test_click_to_call_bridges_the_agent_and_the_customer(
    pbx: Pbx, ami: Ami, phones: Phones, start_sipp, sessions
) -> None:
    anna = await make_agent(sessions)
    customer_id = await make_customer(sessions, phone=CUSTOMER_NUMBER)
    async with unit_of_work(sessions) as session:  # the agent calls from this ticket's thread
        ticket = Ticket(customer_id=customer_id, channel=Channel.CALL)
        session.add(ticket)
        await session.flush()
        ticket_id = ticket.id
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    customer = await start_sipp("agent_answer.xml", phones.customer_port, "-d", "300")
    since = ami.log.mark()

    phones.bus.publish(
        ClickToCallRequested("PJSIP/1001", "8 (916) 123-45-67", requested_by=1, ticket_id=ticket_id)
    )
    await phones.wait_state(State.CONNECTED)

    bridges = await phones.ari.request("GET", "bridges")
    [bridge] = [b for b in bridges if b["id"].startswith("c2c-")]
    legs = {}
    for channel_id in bridge["channels"]:
        channel = await phones.ari.request("GET", f"channels/{channel_id}")
        legs[channel["name"].split("-")[0]] = channel
    assert sorted(legs) == ["PJSIP/1001", "PJSIP/trunk"]
    assert legs["PJSIP/1001"]["state"] == legs["PJSIP/trunk"]["state"] == "Up"
    assert legs["PJSIP/1001"]["caller"]["number"] == CUSTOMER_NUMBER
    # AMI sees both legs enter one bridge, as one call (one Linkedid).
    entered = await ami.log.wait_for(since, "BridgeEnter", BridgeUniqueid=bridge["id"], count=2)
    [linkedid] = {e.headers["Linkedid"] for e in entered}
    # Its start events again (a reconnect): the customer is not dialled a second time.
    await _replay(phones)
    await asyncio.sleep(1.5)  # talk for a while

    # The agent's phone hangs up: the customer's leg goes too, and the bridge is gone.
    await phones.ari.request("DELETE", f"channels/{legs['PJSIP/1001']['id']}")
    ended = await phones.wait_state(State.ENDED)
    assert ended.reason == "agent hung up"
    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report  # each got its BYE
    await phones.settle()
    assert [p.state for p in phones.progress] == [
        State.AGENT_RINGING,
        State.CUSTOMER_RINGING,
        State.CONNECTED,
        State.ENDED,
    ]
    assert not [b for b in await phones.ari.request("GET", "bridges") if b["id"] == bridge["id"]]

    # One outbound call in the customer's history, with the agent and the talk time.
    [(interaction, call)] = await _stored(sessions)
    assert (interaction.customer_id, interaction.direction) == (customer_id, Direction.OUTBOUND)
    assert interaction.ticket_id == ticket_id  # in the thread it was made from
    assert interaction.external_id == call.linkedid == linkedid
    assert interaction.agent_id == call.agent_id == anna
    assert (call.outcome, call.agent_endpoint, call.caller_number) == (
        CallOutcome.ANSWERED,
        "PJSIP/1001",
        CUSTOMER_NUMBER,
    )
    assert call.answered_at is not None and call.ended_at is not None
    assert call.started_at <= call.answered_at < call.ended_at
    assert call.talk_seconds == round((call.ended_at - call.answered_at).total_seconds()) >= 1
    assert (
        interaction.text == f"Исходящий звонок на {CUSTOMER_NUMBER}: разговор {call.talk_seconds} с"
    )
    assert [(r.interaction_id, r.outcome) for r in phones.recorded] == [
        (interaction.id, CallOutcome.ANSWERED)
    ]
    # ... fed to the CRM as an outgoing call.
    [push] = await _crm_calls(sessions)
    assert (push["interaction_id"], push["outbound"], push["answered"], push["phone"]) == (
        interaction.id,
        True,
        True,
        CUSTOMER_NUMBER,
    )
    assert (push["duration_seconds"], push["agent"]) == (call.talk_seconds, "anna")

    # Every event of the call again, its end included: nothing more is stored or sent.
    await _replay(phones)
    await phones.settle()
    assert len(await _stored(sessions)) == 1
    assert len(phones.recorded) == 1
    assert len(await _crm_calls(sessions)) == 1


async def test_a_busy_customer_ends_the_agent_leg_and_is_stored_as_busy(
    pbx: Pbx, ami: Ami, phones: Phones, start_sipp, sessions
) -> None:
    anna = await make_agent(sessions)
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    customer = await start_sipp("agent_busy.xml", phones.customer_port)

    phones.bus.publish(ClickToCallRequested("PJSIP/1001", CUSTOMER_NUMBER))
    failed = await phones.wait_state(State.FAILED)

    assert failed.reason.startswith("customer")
    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report  # the agent's phone got its BYE
    assert not await phones.ari.request("GET", "bridges")
    await phones.settle()
    [(interaction, call)] = await _stored(sessions)
    assert (call.outcome, call.talk_seconds, call.answered_at) == (CallOutcome.BUSY, 0, None)
    assert (interaction.agent_id, interaction.direction) == (anna, Direction.OUTBOUND)
    assert interaction.text == f"Исходящий звонок на {CUSTOMER_NUMBER}: занято"
    [push] = await _crm_calls(sessions)
    assert (push["outbound"], push["answered"], push["outcome"]) == (True, False, "busy")


async def test_a_customer_who_does_not_answer_is_stored_as_no_answer(
    pbx: Pbx, phones: Phones, start_sipp, sessions
) -> None:
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    customer = await start_sipp("agent_noanswer.xml", phones.customer_port)

    phones.bus.publish(ClickToCallRequested("PJSIP/1001", CUSTOMER_NUMBER))
    failed = await phones.wait_state(State.FAILED, timeout=40)

    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report  # the customer's phone was cancelled, the agent's got a BYE
    await phones.settle()
    [(interaction, call)] = await _stored(sessions)
    assert (call.outcome, call.talk_seconds, call.answered_at) == (
        CallOutcome.NO_ANSWER,
        0,
        None,
    ), failed.reason
    assert interaction.text == f"Исходящий звонок на {CUSTOMER_NUMBER}: не ответил"
    [push] = await _crm_calls(sessions)
    assert (push["outbound"], push["outcome"]) == (True, "no_answer")


async def test_a_call_whose_requester_stores_it_is_left_to_it(
    pbx: Pbx, phones: Phones, start_sipp, sessions
) -> None:
    """The callback dialler records its attempts with their callback: not a second time here."""
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")
    customer = await start_sipp("agent_busy.xml", phones.customer_port)

    phones.bus.publish(ClickToCallRequested("PJSIP/1001", CUSTOMER_NUMBER, history=False))
    await phones.wait_state(State.FAILED)

    for phone in (agent, customer):
        code, report = await phone.finish()
        assert code == 0, report
    await phones.settle()
    assert [s.state for s in phones.progress] == [
        State.AGENT_RINGING,
        State.CUSTOMER_RINGING,
        State.FAILED,
    ]
    assert await _stored(sessions) == []
    assert phones.recorded == []


async def test_a_call_the_agent_did_not_answer_is_not_stored(
    pbx: Pbx, phones: Phones, start_sipp, sessions
) -> None:
    """The customer's phone never rang: nothing happened between us and them."""
    agent = await start_sipp("agent_noanswer.xml", pbx.agent_ports["1001"])

    phones.bus.publish(ClickToCallRequested("PJSIP/1001", CUSTOMER_NUMBER))
    failed = await phones.wait_state(State.FAILED, timeout=40)

    assert failed.reason.startswith("agent")
    code, report = await agent.finish()
    assert code == 0, report
    await phones.settle()
    assert [s.state for s in phones.progress] == [State.AGENT_RINGING, State.FAILED]
    assert await _stored(sessions) == []
    assert phones.recorded == []


async def test_a_request_that_cannot_be_dialled_fails_at_once(phones: Phones, sessions) -> None:
    phones.bus.publish(ClickToCallRequested("PJSIP/1001;evil", CUSTOMER_NUMBER))
    phones.bus.publish(ClickToCallRequested("PJSIP/1001", "call me maybe"))

    await phones.settle()

    assert [p.state for p in phones.progress] == [State.FAILED, State.FAILED]
    assert "not an agent endpoint" in phones.progress[0].reason
    assert "not a phone number" in phones.progress[1].reason
    assert not await phones.ari.request("GET", "channels")
    assert await _stored(sessions) == []


async def test_a_channel_nobody_owns_is_hung_up(pbx: Pbx, phones: Phones, start_sipp) -> None:
    agent = await start_sipp("agent_answer.xml", pbx.agent_ports["1001"], "-d", "300")

    await phones.ari.request(
        "POST",
        "channels",
        params={"endpoint": "PJSIP/1001", "app": "callcenter", "appArgs": "clicktocall"},
    )

    code, report = await agent.finish(timeout=15)
    assert code == 0, report  # answered, then hung up by the app
    assert not await phones.ari.request("GET", "channels")

"""ARI: the Stasis app stays registered across Asterisk restarts, and runs the post-call
survey whose keypad answers are stored against the call."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callcenter import health
from callcenter.bus import Bus
from callcenter.channels.telephony.ari import AriAuthError, AriClient, AriError
from callcenter.channels.telephony.models import CallSurvey
from callcenter.channels.telephony.pbx import AsteriskProcess
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.channels.telephony.stasis import StasisApp
from callcenter.channels.telephony.survey import (
    CallSurveyAnswered,
    DigitCollector,
    InvalidEntry,
    record_answer,
)
from callcenter.db import unit_of_work
from callcenter.health import State
from tests.telephony.conftest import CUSTOMER_NUMBER, OUR_NUMBER, Ami, Pbx

APP = "callcenter"


def ari_client(process: AsteriskProcess, password: str | None = None) -> AriClient:
    settings = process.settings
    return AriClient(
        f"http://127.0.0.1:{process.http_port}",
        settings.ari_username,
        password or settings.ari_password,
        APP,
        backoff=(0.1, 1.0),
    )


def ari_health() -> health.ComponentHealth:
    return next(c for c in health.registry.snapshot() if c.name == "ari")


# ---- Keypad answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "low", "high", "score"),
    [
        ("7", 0, 10, 7),
        ("0", 0, 10, 0),
        ("10", 0, 10, 10),
        ("1#", 0, 10, 1),
        ("1*4", 0, 10, 4),  # * starts again
        ("4", 1, 5, 4),
    ],
)
def test_digits_make_a_score(keys: str, low: int, high: int, score: int) -> None:
    collector = DigitCollector(low, high)
    results = [collector.feed(key) for key in keys]
    assert results[-1] == score
    assert all(r is None for r in results[:-1])


def test_a_pause_after_one_ends_the_answer() -> None:
    collector = DigitCollector(0, 10)
    assert collector.feed("1") is None
    assert collector.finish() == 1


@pytest.mark.parametrize(("keys", "low", "high"), [("6", 1, 5), ("0", 1, 5), ("#", 0, 10)])
def test_answers_off_the_scale_are_refused(keys: str, low: int, high: int) -> None:
    collector = DigitCollector(low, high)
    with pytest.raises(InvalidEntry):
        for key in keys:
            collector.feed(key)


async def test_the_first_answer_to_a_question_is_kept(sessions) -> None:
    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    async with unit_of_work(sessions) as session:
        first, created = await record_answer(session, "1795817157.2", "nps", 9, at)
        again, created_again = await record_answer(session, "1795817157.2", "nps", 3, at)
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    async with sessions() as session:
        scores = (await session.scalars(select(CallSurvey.score))).all()
    assert scores == [9]
    with pytest.raises(ValueError, match="Linkedid"):
        async with unit_of_work(sessions) as session:
            await record_answer(session, "x'; drop table", "nps", 9, at)


# ---- Registration -----------------------------------------------------------------------------


@pytest.mark.asterisk
async def test_wrong_ari_password_is_refused_clearly(pbx: Pbx) -> None:
    client = ari_client(pbx.process, password="wrong-password-123")
    with pytest.raises(AriAuthError):
        await client.start()


@pytest.mark.asterisk
async def test_status_shows_ari_refused_then_ok_once_registered(pbx: Pbx) -> None:
    with pytest.raises(AriAuthError):
        await ari_client(pbx.process, password="wrong-password-123").start()
    refused = ari_health()
    assert refused.state is State.FAILING
    assert "ARI 401: authentication failed" in refused.last_error

    client = ari_client(pbx.process)
    await client.start()
    try:
        assert ari_health().state is State.OK
    finally:
        await client.stop()


@pytest.mark.asterisk
async def test_the_app_registers_again_after_asterisk_restarts() -> None:
    async with AsteriskProcess() as process:
        client = ari_client(process)
        registrations: list[int] = []

        async def registered() -> None:
            registrations.append(client.connections)

        client.on_connect(registered)
        await client.start()
        try:
            apps = await client.request("GET", "applications")
            assert [a["name"] for a in apps] == [APP]

            assert ari_health().state is State.OK
            before_restart = datetime.now(UTC)
            await process.restart()
            async with asyncio.timeout(20):
                while len(registrations) < 2:
                    await asyncio.sleep(0.1)

            assert registrations == [1, 2]
            back = ari_health()  # the lost connection was shown, and then the recovery
            assert back.state is State.OK
            assert back.last_error_at is not None and back.last_error_at > before_restart
            assert back.since is not None and back.since > back.last_error_at
            assert (await client.request("GET", f"applications/{APP}"))["name"] == APP
            with pytest.raises(AriError) as missing:
                await client.request("GET", "channels/no-such-channel")
            assert missing.value.status == 404
        finally:
            await client.stop()


# ---- The survey, with real calls --------------------------------------------------------------


@pytest.fixture
async def stasis(pbx: Pbx, sessions) -> AsyncIterator[tuple[Bus, list[object]]]:
    bus = Bus()
    published: list[object] = []

    async def record(event: object) -> None:
        published.append(event)

    bus.subscribe(CallSurveyAnswered, record)
    client = ari_client(pbx.process)
    app = StasisApp(client, sessions, bus)
    await client.start()
    try:
        yield bus, published
    finally:
        await app.close()
        await client.stop()
        await bus.drain()


async def only_agent_1001_available(ami: Ami) -> None:
    for interface, paused in (("PJSIP/1001", "false"), ("PJSIP/1002", "true")):
        response = await ami.client.send_action(
            {"Action": "QueuePause", "Queue": "support", "Interface": interface, "Paused": paused}
        )
        assert response.ok, response.headers


@pytest.mark.asterisk
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_survey_digits_are_stored_against_the_call(
    pbx: Pbx, ami: Ami, stasis, sessions, start_sipp
) -> None:
    bus, published = stasis
    await only_agent_1001_available(ami)
    since = ami.log.mark()

    agent = await start_sipp("agent_hangup.xml", pbx.agent_ports["1001"])
    customer = await start_sipp(
        "customer_survey.xml",
        free_port(socket.SOCK_DGRAM),
        "-s", OUR_NUMBER, f"127.0.0.1:{pbx.process.sip_port}",
    )  # fmt: skip
    customer_code, customer_report = await customer.finish()
    agent_code, agent_report = await agent.finish()
    assert agent_code == 0, agent_report
    assert customer_code == 0, customer_report  # the PBX hung up after the survey

    [join] = await ami.log.wait_for(since, "QueueCallerJoin", CallerIDNum=CUSTOMER_NUMBER)
    linkedid = join.headers["Linkedid"]
    await bus.drain()
    async with sessions() as session:
        rows = (await session.scalars(select(CallSurvey).order_by(CallSurvey.id))).all()
    assert [(r.linkedid, r.question, r.score) for r in rows] == [
        (linkedid, "nps", 10),
        (linkedid, "csat", 4),
    ]
    assert [(e.linkedid, e.question, e.score) for e in published] == [  # type: ignore[attr-defined]
        (linkedid, "nps", 10),
        (linkedid, "csat", 4),
    ]

"""Listen, whisper and barge: the AMI Originate they send, what is refused before Asterisk, and
the route's checks (supervisors with a phone only, agents on a call only, audited)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.events import AgentState
from callcenter.dashboard.control import AmiControl, ControlError, SpyMode, spy_action
from callcenter.models import AuditLog, User
from tests.dashboard.test_control import FakeAmi
from tests.web.conftest import staff as staff  # the fixture
from tests.web.helpers import Visitor
from tests.web.test_wallboard import Live, agent
from tests.web.test_wallboard import live as live  # the fixture


@pytest.mark.parametrize(
    ("mode", "data"),
    [
        (SpyMode.LISTEN, "PJSIP/1001-,qE"),
        (SpyMode.WHISPER, "PJSIP/1001-,qwE"),
        (SpyMode.BARGE, "PJSIP/1001-,qBE"),
    ],
)
async def test_spying_originates_chanspy_from_the_supervisors_phone(mode, data) -> None:
    ami = FakeAmi()
    await AmiControl(ami).spy("PJSIP/1003", "PJSIP/1001", mode)
    assert ami.sent == [
        {
            "Action": "Originate",
            "Channel": "PJSIP/1003",
            "Application": "ChanSpy",
            "Data": data,
            "CallerID": f'"{mode.value} 1001" <1001>',
            "Timeout": "30000",
            "Async": "true",
        }
    ]


@pytest.mark.parametrize(
    ("supervisor", "target"),
    [
        ("PJSIP/1003", "PJSIP/1001,qB"),
        ("PJSIP/1003", "PJSIP/1001\r\nAction: Logoff"),
        ("PJSIP/1003", "Local/1001@agents"),
        ("PJSIP/1003", "PJSIP/"),
        ("Local/1003@agents", "PJSIP/1001"),
        ("PJSIP/1003&PJSIP/1004", "PJSIP/1001"),
        ("PJSIP/1001", "PJSIP/1001"),
    ],
)
def test_only_plain_endpoints_reach_the_originate(supervisor: str, target: str) -> None:
    with pytest.raises(ValueError):
        spy_action(supervisor, target, SpyMode.LISTEN)


async def test_the_route_checks_role_phone_and_call_and_audits(
    live: Live, sessions: async_sessionmaker[AsyncSession]
) -> None:
    spied: list[tuple[str, str, str]] = []

    refusals = [ControlError("Originate failed")]

    async def spy(supervisor: str, agent: str, mode: SpyMode) -> None:
        spy_action(supervisor, agent, mode)
        if refusals:
            raise refusals.pop()
        spied.append((supervisor, agent, mode.value))

    live.control.spy = spy  # type: ignore[attr-defined]
    live.state.agents[0] = replace(live.state.agents[0], state=AgentState.ON_CALL)
    assert live.state.agents[1].state is AgentState.PAUSED
    base = live.server.make_url("/")
    sveta, root, anna = Visitor(base), Visitor(base), Visitor(base)
    try:
        for visitor, name in ((sveta, "sveta"), (root, "root"), (anna, "anna")):
            assert (await visitor.login(name)).status == 303
        form = {"interface": "PJSIP/1001"}
        # Sveta has no phone yet; the page offers no listening either.
        page = await (await sveta.get("/supervisor")).text()
        assert 'data-spy=""' in page
        answer = await sveta.post_form("/supervisor/spy/listen", form)
        assert answer.status == 409 and "нет телефона" in (await answer.json())["error"]
        async with sessions() as db, db.begin():
            user = await db.scalar(select(User).where(User.username == "sveta"))
            assert user is not None
            user.sip_endpoint = "PJSIP/1003"
        assert 'data-spy="PJSIP/1003"' in await (await sveta.get("/supervisor")).text()
        assert (await anna.post_form("/supervisor/spy/listen", form)).status == 403
        assert (await root.post_form("/supervisor/spy/listen", form)).status == 403
        assert (await sveta.post("/supervisor/spy/listen", data=form)).status == 403  # no CSRF
        assert (await sveta.post_form("/supervisor/spy/hangup", form)).status == 404
        paused = await sveta.post_form("/supervisor/spy/whisper", {"interface": "PJSIP/1002"})
        assert paused.status == 409
        assert (await paused.json())["error"] == "Оператор сейчас не разговаривает."
        refused = await sveta.post_form("/supervisor/spy/listen", form)
        assert refused.status == 502  # Asterisk refused: and no audit entry is kept
        assert (await refused.json())["error"] == "Asterisk отказал: Originate failed"
        done = await sveta.post_form("/supervisor/spy/barge", form)
        assert (done.status, await done.json()) == (200, {"ok": True})
        assert spied == [("PJSIP/1003", "PJSIP/1001", "barge")]
    finally:
        for visitor in (sveta, root, anna):
            await visitor.close()
    async with sessions() as db:
        entries = list(await db.scalars(select(AuditLog).where(AuditLog.action.like("agent.%"))))
    assert [(e.action, e.actor, e.target_id, e.details) for e in entries] == [
        ("agent.barge", "sveta", "PJSIP/1001", {"from": "PJSIP/1003"})
    ]


def test_on_call_is_read_from_the_live_state(live: Live) -> None:
    live.state.agents.append(agent("PJSIP/1004", AgentState.WRAPUP))
    assert not live.wallboard.on_call("PJSIP/1004")
    live.state.agents.append(agent("PJSIP/1004", AgentState.ON_CALL))  # on a second server
    assert live.wallboard.on_call("PJSIP/1004")
    assert not live.wallboard.on_call("PJSIP/1009")

"""The wallboard's JSON from the real live state fed with recorded AMI transcripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from callcenter.channels.telephony.state import LiveState, QueueSettings
from callcenter.dashboard.board import Policy, board_json
from tests.telephony.transcripts import load, play

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def board(state: LiveState, seconds: float, policy: Policy | None = None) -> dict:
    now = at(seconds)
    policy = policy or Policy()
    data = board_json(state.queue_snapshots(now), state.agent_snapshots(now), policy, now)
    return json.loads(json.dumps(data, ensure_ascii=False))  # plain JSON, nothing else


def queue(data: dict, name: str) -> dict:
    [found] = [q for q in data["queues"] if q["name"] == name]
    return found


def agent(data: dict, interface: str) -> dict:
    [found] = [a for a in data["agents"] if a["interface"] == interface]
    return found


def test_a_waiting_caller_and_a_ringing_agent() -> None:
    state = LiveState()
    play(state, load("answered_call.txt"), START, until=105)

    data = board(state, 110, Policy(long_wait_seconds=8))
    support = queue(data, "support")
    assert support["callers"] == [
        {
            "linkedid": "1795818927.2",
            "number": "+79161234567",
            "name": "Иван Петров",
            "position": 1,
            "wait": 8,
            "long": True,
        }
    ]
    assert (support["waiting"], support["longest_wait"]) == (1, 8)
    assert (support["logged_in"], support["available"]) == (2, 0)
    assert support["alarms"] == {"service_level": False, "long_wait": True}
    assert support["service_level"] is None  # nothing answered yet: no figure, no alarm
    ringing = agent(data, "PJSIP/1001")
    assert (ringing["state"], ringing["caller_name"], ringing["queue"]) == (
        "ringing",
        "Иван Петров",
        "support",
    )
    assert data["at"] == at(110).isoformat()
    assert data["policy"] == {
        "service_level_target": 80.0,
        "long_wait_seconds": 8,
        "repeat_contact_goal": 5.0,
        "repeat_contact_alarm": 15.0,
        "answer_promise_minutes": 120,
    }
    assert data["tiles"] is None  # the backlog has not been read yet

    assert (
        queue(board(state, 110, Policy(long_wait_seconds=9)), "support")["callers"][0]["long"]
        is False
    )


def test_figures_after_the_answered_call() -> None:
    state = LiveState()
    play(state, load("answered_call.txt"), START)

    support = queue(board(state, 300), "support")
    assert support["callers"] == [] and support["waiting"] == 0
    assert (support["answered"], support["abandoned"], support["timeout"]) == (1, 0, 0)
    assert (support["service_level"], support["answered_in_sl"], support["sl_seconds"]) == (
        100.0,
        1,
        20,
    )
    assert support["abandoned_in_sl"] is False
    assert (support["avg_wait"], support["avg_talk"]) == (12, 95)
    done = agent(board(state, 300), "PJSIP/1001")
    assert (done["state"], done["calls_today"], done["caller_number"]) == ("available", 1, "")


def test_service_level_under_the_target_raises_the_alarm_and_shows_the_rule() -> None:
    state = LiveState(settings={"support": QueueSettings(abandoned_in_service_level=True)})
    play(state, load("caller_abandons.txt"), START)

    support = queue(board(state, 60), "support")
    assert support["abandoned"] >= 1
    assert (support["service_level"], support["abandoned_in_sl"]) == (0.0, True)
    assert support["alarms"]["service_level"] is True
    assert (
        queue(board(state, 60, Policy(service_level_target=0)), "support")["alarms"][
            "service_level"
        ]
        is False
    )


def test_a_paused_agent_shows_the_reason() -> None:
    state = LiveState()
    play(state, load("agent_paused.txt"), START, until=300)

    data = board(state, 300)
    paused = agent(data, "PJSIP/1001")
    assert (paused["state"], paused["reason"], paused["seconds"]) == ("paused", "обед", 288)
    assert paused["paused_queues"] == paused["queues"] == ["sales", "support"]
    assert agent(data, "PJSIP/1002")["state"] == "offline"
    assert (queue(data, "sales")["logged_in"], queue(data, "sales")["available"]) == (1, 0)

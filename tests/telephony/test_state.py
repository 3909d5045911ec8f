"""Live state from AMI transcripts (tests/telephony/fixtures): one test per real event shape."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.channels.telephony.events import (
    AgentRinging,
    AgentState,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallerAbandoned,
    CallerJoined,
)
from callcenter.channels.telephony.state import LiveState, QueueSettings
from callcenter.models import CallOutcome
from tests.telephony.transcripts import TranscriptError, load, parse, play

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def of(kind: type, events: list[object]) -> list:
    return [e for e in events if isinstance(e, kind)]


def states(events: list[object], interface: str) -> list[tuple[AgentState, str, datetime]]:
    return [
        (e.state, e.reason, e.since)
        for e in of(AgentStateChanged, events)
        if e.interface == interface
    ]


def agent(state: LiveState, interface: str, now: datetime):
    [found] = [a for a in state.agent_snapshots(now) if a.interface == interface]
    return found


def test_answered_call_is_recorded_with_wait_and_talk():
    state = LiveState()
    events = play(state, load("answered_call.txt"), START)

    [ended] = of(CallEnded, events)
    assert ended == CallEnded(
        linkedid="1795818927.2",
        queue="support",
        caller_number="+79161234567",
        caller_name="Иван Петров",
        agent_interface="PJSIP/1001",
        wait_seconds=12,
        talk_seconds=95,
        outcome=CallOutcome.ANSWERED,
        started_at=at(100),
        answered_at=at(114),
        ended_at=at(211),
    )
    assert states(events, "PJSIP/1001") == [
        (AgentState.AVAILABLE, "", at(0)),
        (AgentState.RINGING, "", at(102)),
        (AgentState.ON_CALL, "", at(114)),
        (AgentState.AVAILABLE, "", at(209)),
    ]
    assert states(events, "PJSIP/1002") == [(AgentState.PAUSED, "обед", at(0))]
    assert state.calls_in_progress == 0


def test_agent_called_is_the_screen_pop_with_the_russian_caller_name():
    events = play(LiveState(), load("answered_call.txt"), START)

    assert of(AgentRinging, events) == [
        AgentRinging(
            interface="PJSIP/1001",
            agent_name="Agent One",
            queue="support",
            linkedid="1795818927.2",
            caller_number="+79161234567",
            caller_name="Иван Петров",
            at=at(102),
        )
    ]


def test_recorded_asterisk_22_session():
    """Three real calls as Asterisk 22 reported them (see the fixture's header)."""
    state = LiveState()
    events = play(state, load("asterisk22_recorded.txt"), START)

    ended = of(CallEnded, events)
    assert [(e.outcome, e.wait_seconds, e.talk_seconds) for e in ended] == [
        (CallOutcome.ANSWERED, 1, 1),
        (CallOutcome.ABANDONED, 3, 0),
        (CallOutcome.ABANDONED, 3, 0),
    ]
    assert {(e.caller_number, e.caller_name) for e in ended} == {("+79161234567", "Иван Петров")}
    pops = of(AgentRinging, events)
    assert [(p.interface, p.caller_name, p.at) for p in pops] == [
        ("PJSIP/1001", "Иван Петров", at(0.51)),
        ("PJSIP/1001", "Иван Петров", at(10.51)),
        ("PJSIP/1001", "Иван Петров", at(20.51)),
        ("PJSIP/1001", "Иван Петров", at(22.51)),
    ]
    # The phone reported "busy" while ringing: never shown as a call that was not answered.
    assert [(s, t) for s, _, t in states(events, "PJSIP/1001") if s is AgentState.ON_CALL] == [
        (AgentState.ON_CALL, at(1.52))
    ]
    assert states(events, "PJSIP/1002") == [(AgentState.PAUSED, "обед", at(11.39))]
    support = state.queue_snapshot("support", at(30))
    assert (support.answered_today, support.abandoned_today, support.service_level) == (1, 2, 100.0)
    assert state.calls_in_progress == 0


def test_dashboard_during_an_answered_call():
    state = LiveState()
    steps = load("answered_call.txt")

    play(state, steps, START, until=105)
    [support] = [q for q in state.queue_snapshots(at(110)) if q.name == "support"]
    [waiting] = support.callers
    assert (waiting.caller_name, waiting.position, waiting.wait_seconds) == ("Иван Петров", 1, 8)
    assert waiting.waiting_since == at(102)
    assert support.longest_wait_seconds == 8
    assert (support.agents_logged_in, support.agents_available) == (2, 0)  # one rings, one paused
    ringing = agent(state, "PJSIP/1001", at(110))
    assert (ringing.state, ringing.caller_number, ringing.call_queue) == (
        AgentState.RINGING,
        "+79161234567",
        "support",
    )

    play(state, steps, START, after=105, until=150)
    talking = agent(state, "PJSIP/1001", at(150))
    assert (talking.state, talking.since, talking.seconds_in_state) == (
        AgentState.ON_CALL,
        at(114),
        36,
    )
    assert (talking.caller_name, talking.linkedid) == ("Иван Петров", "1795818927.2")
    assert state.queue_snapshot("support", at(150)).callers == ()

    play(state, steps, START, after=150)
    support = state.queue_snapshot("support", at(300))
    assert (support.answered_today, support.abandoned_today, support.timeout_today) == (1, 0, 0)
    assert support.service_level == 100.0
    assert (support.average_wait_seconds, support.average_talk_seconds) == (12.0, 95.0)
    assert (support.agents_logged_in, support.agents_available) == (2, 1)
    done = agent(state, "PJSIP/1001", at(300))
    assert (done.state, done.calls_today, done.caller_number) == (AgentState.AVAILABLE, 1, "")


def test_wrap_up_after_a_call_ends_on_tick():
    state = LiveState(settings={"support": QueueSettings(wrapup_seconds=30)})
    events = play(state, load("answered_call.txt"), START)

    assert states(events, "PJSIP/1001")[-1] == (AgentState.WRAPUP, "", at(209))
    assert agent(state, "PJSIP/1001", at(220)).state is AgentState.WRAPUP
    assert state.tick(at(238)) == []
    assert state.tick(at(240)) == [
        AgentStateChanged("PJSIP/1001", AgentState.AVAILABLE, "", at(239))
    ]
    assert agent(state, "PJSIP/1001", at(250)).seconds_in_state == 11


def test_wrap_up_shows_over_even_without_tick():
    state = LiveState(settings={"support": QueueSettings(wrapup_seconds=30)})
    play(state, load("answered_call.txt"), START)

    snapshot = agent(state, "PJSIP/1001", at(250))
    assert (snapshot.state, snapshot.since) == (AgentState.AVAILABLE, at(239))


def test_callers_who_give_up_are_abandoned_and_the_queue_moves_up():
    state = LiveState()
    steps = load("caller_abandons.txt")

    play(state, steps, START, until=20)
    waiting = state.queue_snapshot("support", at(20)).callers
    assert [(c.caller_name, c.position) for c in waiting] == [
        ("Иван Петров", 1),
        ("Ёлкина Жанна", 2),
    ]

    events = play(state, steps, START, after=20, until=45)
    [abandoned] = of(CallerAbandoned, events)
    assert (abandoned.caller_name, abandoned.wait_seconds, abandoned.position) == (
        "Иван Петров",
        30,
        1,
    )
    [left] = state.queue_snapshot("support", at(45)).callers
    assert (left.caller_name, left.position, left.wait_seconds) == ("Ёлкина Жанна", 1, 32)

    events += play(state, steps, START, after=45)
    assert [
        (e.caller_number, e.outcome, e.wait_seconds, e.talk_seconds) for e in of(CallEnded, events)
    ] == [
        ("+79161234567", CallOutcome.ABANDONED, 30, 0),
        ("89035551234", CallOutcome.ABANDONED, 45, 0),
    ]
    support = state.queue_snapshot("support", at(60))
    assert (support.answered_today, support.abandoned_today) == (0, 2)
    assert support.service_level is None  # nothing answered, abandoned not counted
    assert (support.agents_logged_in, support.agents_available) == (1, 0)
    assert agent(state, "PJSIP/1001", at(60)).reason == "обучение"
    assert agent(state, "PJSIP/1002", at(60)).state is AgentState.OFFLINE


def test_service_level_can_count_abandoned_calls():
    settings = {"support": QueueSettings(abandoned_in_service_level=True)}
    state = LiveState(settings=settings)
    play(state, load("caller_abandons.txt"), START)

    assert state.queue_snapshot("support", at(60)).service_level == 0.0


def test_nobody_answers_until_the_queue_times_out():
    state = LiveState()
    events = play(state, load("no_answer_timeout.txt"), START)

    assert [e.interface for e in of(AgentRinging, events)] == ["PJSIP/1001", "PJSIP/1002"]
    [ended] = of(CallEnded, events)
    assert (ended.outcome, ended.wait_seconds, ended.agent_interface, ended.answered_at) == (
        CallOutcome.TIMEOUT,
        60,
        None,
        None,
    )
    assert ended.ended_at == at(63)
    support = state.queue_snapshot("support", at(70))
    assert (support.timeout_today, support.abandoned_today, support.answered_today) == (1, 0, 0)
    assert states(events, "PJSIP/1002")[1:] == [
        (AgentState.RINGING, "", at(18)),
        (AgentState.AVAILABLE, "", at(33)),
    ]


def test_ring_no_answer_then_the_second_agent_answers():
    state = LiveState()
    events = play(state, load("second_agent_answers.txt"), START)

    assert [e.interface for e in of(AgentRinging, events)] == ["PJSIP/1001", "PJSIP/1002"]
    [answered] = of(CallAnswered, events)
    assert (answered.interface, answered.wait_seconds) == ("PJSIP/1002", 21)
    [ended] = of(CallEnded, events)
    assert (ended.outcome, ended.agent_interface, ended.wait_seconds, ended.talk_seconds) == (
        CallOutcome.ANSWERED,
        "PJSIP/1002",
        21,
        40,
    )
    assert states(events, "PJSIP/1001")[1:] == [
        (AgentState.RINGING, "", at(0.5)),
        (AgentState.AVAILABLE, "", at(15.5)),
    ]
    support = state.queue_snapshot("support", at(70))
    assert (support.answered_today, support.answered_within_service_level_today) == (1, 0)
    assert support.service_level == 0.0  # 21 s is over the 20 s threshold
    assert agent(state, "PJSIP/1002", at(70)).calls_today == 1
    assert agent(state, "PJSIP/1001", at(70)).calls_today == 0


def test_agent_paused_with_a_reason():
    state = LiveState()
    steps = load("agent_paused.txt")

    play(state, steps, START, until=11)
    half = agent(state, "PJSIP/1001", at(11))
    assert (half.state, half.paused_queues) == (AgentState.AVAILABLE, ("support",))
    assert state.queue_snapshot("support", at(11)).agents_available == 1  # Agent Two only
    assert state.queue_snapshot("sales", at(11)).agents_available == 2

    events = play(state, steps, START, after=11, until=300)
    paused = agent(state, "PJSIP/1001", at(300))
    assert (paused.state, paused.reason, paused.since, paused.seconds_in_state) == (
        AgentState.PAUSED,
        "обед",
        at(12),
        288,
    )
    assert states(events, "PJSIP/1002") == [(AgentState.OFFLINE, "", at(30))]
    assert agent(state, "PJSIP/1002", at(300)).queues == ("support",)
    sales = state.queue_snapshot("sales", at(300))
    assert (sales.agents_logged_in, sales.agents_available) == (1, 0)

    events = play(state, steps, START, after=300)
    assert states(events, "PJSIP/1001") == [(AgentState.AVAILABLE, "", at(612))]


def test_resync_after_a_reconnect_rebuilds_the_truth():
    state = LiveState()
    steps = load("reconnect_resync.txt")
    before = play(state, steps, START, until=19)
    assert len(state.queue_snapshot("support", at(19)).callers) == 3

    events = play(state, steps, START, after=19, until=20)

    [vanished] = of(CallEnded, events)
    assert (vanished.caller_name, vanished.outcome, vanished.ended_at) == (
        "Ёлкина Жанна",
        CallOutcome.ABANDONED,
        at(20),
    )
    callers = state.queue_snapshot("support", at(20)).callers
    assert [(c.caller_name, c.position, c.waiting_since) for c in callers] == [
        ("Пётр Кузнецов", 1, at(3)),
        ("Мария Сидорова-Щукина", 2, at(12)),
    ]
    assert [e.caller_name for e in of(CallerJoined, events)] == ["Мария Сидорова-Щукина"]
    talking = agent(state, "PJSIP/1001", at(20))
    assert (talking.state, talking.caller_name) == (AgentState.ON_CALL, "Иван Петров")
    assert of(CallEnded, before) == []


def test_resync_finalises_each_vanished_caller_once_and_calls_go_on():
    state = LiveState()
    steps = load("reconnect_resync.txt")
    events = play(state, steps, START, until=20)
    # The same answers again, with no new resync started, change nothing.
    events += play(state, steps, START, after=19, until=20)

    events += play(state, steps, START, after=20)

    ended = {e.caller_name: e for e in of(CallEnded, events)}
    assert len(of(CallEnded, events)) == 4
    assert (ended["Ёлкина Жанна"].outcome, ended["Пётр Кузнецов"].outcome) == (
        CallOutcome.ABANDONED,
        CallOutcome.ABANDONED,
    )
    ivan = ended["Иван Петров"]
    # Answered during the outage: AgentComplete's HoldTime corrects the resync's estimate.
    assert (ivan.outcome, ivan.wait_seconds, ivan.talk_seconds, ivan.answered_at) == (
        CallOutcome.ANSWERED,
        4,
        45,
        at(5),
    )
    maria = ended["Мария Сидорова-Щукина"]
    assert (maria.outcome, maria.wait_seconds, maria.talk_seconds) == (CallOutcome.ANSWERED, 41, 30)
    support = state.queue_snapshot("support", at(90))
    assert (support.answered_today, support.abandoned_today) == (2, 2)
    assert support.answered_within_service_level_today == 1
    assert state.calls_in_progress == 0


def test_a_second_resync_with_the_same_truth_finalises_nothing():
    state = LiveState()
    steps = load("reconnect_resync.txt")
    play(state, steps, START, until=20)
    resync = [s for s in steps if s.offset == 20 and s.marker is None]

    state.resync_begin()
    events = play(state, resync, START + timedelta(seconds=1))

    assert of(CallEnded, events) == []
    assert of(CallerJoined, events) == []
    assert len(state.queue_snapshot("support", at(21)).callers) == 2


def test_resync_takes_up_calls_answered_during_the_outage():
    state = LiveState()
    play(state, load("answered_call.txt"), START, until=0)  # the login: agents 1001, 1002
    seen = {"Uniqueid": "1795819600.20", "Linkedid": "1795819600.20", "CallerIDNum": "+79161234567"}
    state.apply({"Event": "Newchannel", **seen, "Context": "from-trunk"}, at(50))
    unseen = {
        "Uniqueid": "1795819620.22",
        "Linkedid": "1795819620.22",
        "CallerIDNum": "84957654321",
    }
    in_queue = {"Application": "Queue", "ApplicationData": "support,c,,,3600"}

    def leg(channel: str, uniqueid: str) -> dict[str, str]:
        return {"Channel": channel, "Uniqueid": uniqueid, "Application": "AppQueue"}

    state.resync_begin()
    events = []
    for event in [
        {"Event": "QueueParams", "Queue": "support", "ServiceLevel": "20"},
        {"Event": "QueueMember", "Queue": "support", "Location": "PJSIP/1001", "Status": "2"},
        {"Event": "QueueMember", "Queue": "support", "Location": "PJSIP/1002", "Status": "2"},
        {"Event": "QueueStatusComplete"},
        {"Event": "CoreShowChannel", **seen, **in_queue, "BridgeId": "b1", "Duration": "00:00:30"},
        {
            "Event": "CoreShowChannel",
            **leg("PJSIP/1001-0000001f", "1795819601.21"),
            "BridgeId": "b1",
        },
        {
            "Event": "CoreShowChannel",
            **unseen,
            **in_queue,
            "BridgeId": "b2",
            "Duration": "00:00:20",
        },
        {
            "Event": "CoreShowChannel",
            **leg("PJSIP/1002-00000023", "1795819621.23"),
            "BridgeId": "b2",
        },
        {"Event": "CoreShowChannelsComplete"},
    ]:
        events += state.apply(event, at(80))

    answered = {e.caller_number: e.interface for e in of(CallAnswered, events)}
    assert answered == {"+79161234567": "PJSIP/1001", "84957654321": "PJSIP/1002"}
    assert agent(state, "PJSIP/1002", at(80)).caller_number == "84957654321"
    complete = {**unseen, "Queue": "support", "Interface": "PJSIP/1002"}
    state.apply({"Event": "AgentComplete", **complete, "HoldTime": "5", "TalkTime": "15"}, at(95))
    [ended] = of(CallEnded, state.apply({"Event": "Hangup", **unseen}, at(95)))
    assert (ended.outcome, ended.queue, ended.wait_seconds, ended.talk_seconds) == (
        CallOutcome.ANSWERED,
        "support",
        5,
        15,
    )
    assert (ended.started_at, ended.answered_at) == (at(60), at(65))
    support = state.queue_snapshot("support", at(100))
    assert (support.answered_today, support.answered_within_service_level_today) == (2, 1)


def test_an_answer_lost_in_an_outage_never_shows_the_ringing_agent_as_available():
    state = LiveState()
    play(state, load("answered_call.txt"), START, until=102)  # 1001 rings; AgentConnect is lost
    assert agent(state, "PJSIP/1001", at(102)).state == AgentState.RINGING
    member = {"Queue": "support", "Location": "PJSIP/1001", "Name": "Agent One", "Status": "2"}
    caller = {"Channel": "PJSIP/trunk-00000002", "Uniqueid": "1795818927.2"}
    in_queue = {"Linkedid": "1795818927.2", "Application": "Queue", "ApplicationData": "support"}
    phone = {"Channel": "PJSIP/1001-00000003", "Uniqueid": "1795818929.3"}

    state.resync_begin()
    events = state.apply({"Event": "QueueParams", "Queue": "support"}, at(120))
    events += state.apply({"Event": "QueueMember", **member, "InCall": "1"}, at(120))
    events += state.apply({"Event": "QueueStatusComplete"}, at(120))
    # Between the two answers the agent still shows the caller, not a free seat.
    between = agent(state, "PJSIP/1001", at(120))
    assert (between.linkedid, between.state) == ("1795818927.2", AgentState.RINGING)
    for channel in (
        {**caller, **in_queue, "BridgeId": "b1", "Duration": "00:00:20"},
        {**phone, "Linkedid": "1795818927.2", "BridgeId": "b1"},
    ):
        events += state.apply({"Event": "CoreShowChannel", **channel}, at(120))
    events += state.apply({"Event": "CoreShowChannelsComplete"}, at(120))

    after = agent(state, "PJSIP/1001", at(120))
    assert (after.linkedid, after.state) == ("1795818927.2", AgentState.ON_CALL)
    assert [s for s, _, _ in states(events, "PJSIP/1001")] == [AgentState.ON_CALL]


def test_a_call_that_never_reached_a_queue_is_missed():
    events = play(LiveState(), load("missed_before_queue.txt"), START)

    [ended] = of(CallEnded, events)
    assert (ended.outcome, ended.queue, ended.caller_number) == (
        CallOutcome.MISSED,
        None,
        "anonymous",
    )
    assert (ended.started_at, ended.ended_at) == (at(0), at(6))


def test_daily_figures_start_again_at_local_midnight():
    moscow = ZoneInfo("Europe/Moscow")
    start = datetime(2026, 3, 2, 23, 55, tzinfo=moscow)  # the call is answered at 23:56:54
    state = LiveState(tz=moscow)
    play(state, load("answered_call.txt"), start)

    before = start.replace(hour=23, minute=59, second=59)
    after = datetime(2026, 3, 3, 0, 0, 1, tzinfo=moscow)
    assert state.queue_snapshot("support", before).answered_today == 1
    assert agent(state, "PJSIP/1001", before).calls_today == 1
    assert state.queue_snapshot("support", after).answered_today == 0
    assert state.queue_snapshot("support", after).service_level is None
    assert agent(state, "PJSIP/1001", after).calls_today == 0


def test_a_caller_moved_to_another_queue_ends_there():
    state = LiveState()
    play(state, load("no_answer_timeout.txt"), START, until=62)
    call = {
        "Uniqueid": "1795819100.6",
        "Linkedid": "1795819100.6",
        "CallerIDNum": "+79261112233",
        "CallerIDName": "Пётр Кузнецов",
        "Queue": "sales",
    }
    state.apply({"Event": "QueueCallerJoin", **call, "Position": "1"}, at(62))
    state.apply({"Event": "QueueCallerLeave", **call}, at(70))
    state.apply(
        {"Event": "AgentConnect", **call, "Interface": "PJSIP/1002", "HoldTime": "8"}, at(70)
    )
    state.apply(
        {"Event": "AgentComplete", **call, "Interface": "PJSIP/1002", "TalkTime": "20"}, at(90)
    )
    [ended] = of(CallEnded, state.apply({"Event": "Hangup", **call}, at(90)))

    assert (ended.queue, ended.outcome, ended.wait_seconds, ended.talk_seconds) == (
        "sales",
        CallOutcome.ANSWERED,
        60 + 8,
        20,
    )
    assert state.queue_snapshot("support", at(91)).timeout_today == 1
    assert state.queue_snapshot("sales", at(91)).answered_today == 1


def test_bad_headers_are_logged_not_fatal(caplog: pytest.LogCaptureFixture):
    state = LiveState()
    caller = {
        "Uniqueid": "1.1",
        "Linkedid": "1.1",
        "CallerIDNum": "+79161234567",
        "Queue": "support",
    }
    with caplog.at_level(logging.WARNING):
        joined = state.apply({"Event": "QueueCallerJoin", **caller, "Position": "первый"}, at(0))
        abandoned = state.apply({"Event": "QueueCallerAbandon", **caller, "HoldTime": "x"}, at(7))

    assert of(CallerJoined, joined)[0].position == 1
    assert of(CallerAbandoned, abandoned)[0].wait_seconds == 7
    assert "not a number: 'первый'" in caplog.text
    assert state.apply({"Event": "SomethingNew"}, at(8)) == []
    assert state.apply({"Response": "Success"}, at(8)) == []


def test_transcript_errors_name_the_line():
    with pytest.raises(TranscriptError, match=r"<transcript>:3: not a 'Key: Value' line"):
        parse("Event: Hangup\nUniqueid: 1.1\nno colon here\n")
    with pytest.raises(TranscriptError, match="At goes back in time"):
        parse("At: 5\nEvent: Hangup\n\nAt: 4\nEvent: Hangup\n")


def test_a_preferred_agent_dialled_directly_rings_is_answered_and_recorded():
    state = LiveState()
    events = play(state, load("preferred_agent_direct.txt"), START)

    [ringing] = of(AgentRinging, events)
    assert (ringing.interface, ringing.queue, ringing.linkedid) == (
        "PJSIP/1001",
        "",
        "1795820000.40",
    )
    assert ringing.caller_name == "Иван Петров" and ringing.at == at(1)
    [answered] = of(CallAnswered, events)
    assert answered.wait_seconds == 5 and answered.at == at(5)
    [ended] = of(CallEnded, events)
    assert ended.outcome is CallOutcome.ANSWERED
    assert ended.queue is None and ended.agent_interface == "PJSIP/1001"
    assert (ended.wait_seconds, ended.talk_seconds) == (5, 60)
    assert ended.answered_at == at(5) and ended.ended_at == at(65)
    assert agent(state, "PJSIP/1001", at(66)).state is not AgentState.ON_CALL


def test_an_unanswered_direct_dial_stops_the_ringing_and_the_call_goes_on_to_the_queue():
    steps = load("preferred_agent_direct.txt")
    state = LiveState()
    before_end = play(state, steps, START, until=1)
    assert of(AgentRinging, before_end)
    end = {"Event": "DialEnd", "Uniqueid": "1795820000.40", "Linkedid": "1795820000.40",
           "DestChannel": "PJSIP/1001-00000021", "DialStatus": "NOANSWER"}  # fmt: skip
    events = state.apply(end, at(16))
    assert not of(CallAnswered, events)
    assert agent(state, "PJSIP/1001", at(17)).state is not AgentState.RINGING
    join = {"Event": "QueueCallerJoin", "Queue": "support", "Position": "1", "Count": "1",
            "Uniqueid": "1795820000.40", "Linkedid": "1795820000.40",
            "CallerIDNum": "+79161234567", "CallerIDName": "Иван Петров"}  # fmt: skip
    assert of(CallerJoined, state.apply(join, at(16)))


def test_the_state_names_every_event_it_reads_so_the_adapter_can_skip_the_rest():
    names = LiveState().handled_events
    assert {"QueueCallerJoin", "AgentCalled", "AgentConnect", "Hangup", "DialBegin"} <= names
    assert {"QueueParams", "QueueMember", "QueueEntry", "CoreShowChannel"} <= names
    assert "VarSet" not in names and "Newexten" not in names

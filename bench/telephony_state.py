"""Live state throughput: AMI events parsed and applied to LiveState per second, on one core.

The synthetic stream mixes realistic queued calls (answered, answered after a ring-no-answer,
abandoned, timed out, missed before the queue) with the channel noise Asterisk sends around them
(Newexten, VarSet, Newstate, DialBegin/End, Bridge*, DeviceStateChange, QueueMemberStatus),
many calls at once, with full header sets and Russian caller names. Figures:
  - parse+apply: amiframes.FrameReader over the bytes, then LiveState.apply with the arrival time
  - apply only:  LiveState.apply over already parsed dicts
Rates are per second of this process's CPU time (other load on the machine does not skew them),
with the wall-clock rate beside.
Goal from the telephony issue: >= 20,000 events/s parsed and applied.

    .venv/bin/python bench/telephony_state.py [--events 200000] [--concurrent 40]
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from datetime import UTC, datetime, timedelta

from callcenter.channels.telephony.amiframes import FrameReader
from callcenter.channels.telephony.state import LiveState

NAMES = ["Иван Петров", "Ёлкина Жанна", "Мария Сидорова-Щукина", "Пётр Иванович Кузнецов"]
AGENTS = [f"PJSIP/{1001 + n}" for n in range(30)]
QUEUES = ["support", "sales"]


def h(**headers: object) -> str:
    return "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())


def frame(event: str, privilege: str, *parts: str) -> str:
    return f"Event: {event}\r\nPrivilege: {privilege},all\r\n{''.join(parts)}\r\n"


def snapshot(channel: str, uid: str, number: str, name: str, context: str = "inbound") -> str:
    return h(
        Channel=channel, ChannelState=6, ChannelStateDesc="Up", CallerIDNum=number,
        CallerIDName=name, ConnectedLineNum="<unknown>", ConnectedLineName="<unknown>",
        Language="ru", AccountCode="", Context=context, Exten="s", Priority=7, Uniqueid=uid,
        Linkedid=uid.split("+")[0],
    )  # fmt: skip


def dest(snap: str) -> str:
    return "".join(f"Dest{line}\r\n" for line in snap.split("\r\n") if line)


def member_status(queue: str, agent: str, status: int) -> str:
    return frame(
        "QueueMemberStatus", "agent",
        h(Queue=queue, MemberName=f"Agent {agent[-4:]}", Interface=agent, StateInterface=agent,
          Membership="static", Penalty=0, CallsTaken=3, LastCall=1795818930, LastPause=0,
          LoginTime=1795818000, InCall=0, Status=status, Paused=0, PausedReason="",
          Ringinuse=0, Wrapuptime=0),
    )  # fmt: skip


def one_call(n: int, rng: random.Random) -> list[tuple[float, str]]:
    """The frames of call number `n`, each with its offset in seconds from the call's start."""
    uid = f"1795818{n:06d}.{2 * n}"
    number, name = f"+7916{n % 10_000_000:07d}", NAMES[n % len(NAMES)]
    queue = QUEUES[n % 2]
    caller = snapshot(f"PJSIP/trunk-{2 * n:08x}", uid, number, name)
    in_queue = h(Queue=queue, Position=1, Count=1)
    hangup = h(Cause=16, Cause_txt="Normal Clearing")
    frames = [(0.0, frame("Newchannel", "call", caller.replace("inbound", "from-trunk")))]
    for step in range(6):  # the dialplan before Queue(): Newexten and VarSet
        app = h(Extension="s", Application="Set", AppData=f"X={step}")
        frames.append((0.05 * step, frame("Newexten", "dialplan", caller, app)))
        frames.append(
            (0.05 * step, frame("VarSet", "dialplan", caller, h(Variable="X", Value=step)))
        )
    shape = rng.random()
    if shape < 0.05:  # hangs up in the IVR: missed
        return [*frames, (3.0, frame("Hangup", "call", caller, hangup))]
    frames.append((1.0, frame("QueueCallerJoin", "agent", caller, in_queue)))
    t, answered = 1.0, False
    for attempt in range(2 if shape < 0.25 else 1):
        agent = AGENTS[(n + attempt) % len(AGENTS)]
        leg = snapshot(f"{agent}-{2 * n + 1 + attempt:08x}", f"{uid}+{attempt}", agent[-4:], "A")
        member = h(Queue=queue, Interface=agent, MemberName=f"Agent {agent[-4:]}")
        frames += [
            (t, frame("AgentCalled", "agent", caller, dest(leg), member)),
            (t, frame("DialBegin", "call", caller, dest(leg), h(DialString=agent))),
            (t, member_status(queue, agent, 6)),
            (t, frame("DeviceStateChange", "call", h(Device=agent, State="RINGING"))),
        ]
        if shape < 0.2 or (shape < 0.25 and attempt == 0):  # lets it ring
            t += 15
            frames.append((t, frame("AgentRingNoAnswer", "agent", caller, dest(leg), member)))
            frames.append((t, member_status(queue, agent, 1)))
            t += 2
            continue
        if shape < 0.4:  # the caller gives up while it rings
            t += rng.uniform(5, 40)
            gave_up = h(Queue=queue, Position=1, OriginalPosition=1, HoldTime=int(t - 1))
            frames += [
                (t, frame("QueueCallerAbandon", "agent", caller, gave_up)),
                (t, frame("QueueCallerLeave", "agent", caller, in_queue)),
                (t, member_status(queue, agent, 1)),
            ]
            answered = True  # not timed out
            break
        t += rng.uniform(2, 12)
        hold, talk = int(t - 1), rng.randint(20, 300)
        bridge = h(BridgeUniqueid=f"b-{uid}", BridgeType="basic")
        frames += [
            (t, frame("DialEnd", "call", caller, dest(leg), h(DialStatus="ANSWER"))),
            (t, frame("QueueCallerLeave", "agent", caller, in_queue)),
            (t, frame("AgentConnect", "agent", caller, dest(leg), member, h(HoldTime=hold))),
            (t, frame("BridgeEnter", "call", bridge, leg)),
            (t, frame("BridgeEnter", "call", bridge, caller)),
            (t, member_status(queue, agent, 2)),
        ]
        t += talk
        done = h(HoldTime=hold, TalkTime=talk, Reason="caller")
        frames += [
            (t, frame("AgentComplete", "agent", caller, dest(leg), member, done)),
            (t, frame("BridgeLeave", "call", bridge, caller)),
            (t, frame("Hangup", "call", leg, hangup)),
            (t, member_status(queue, agent, 1)),
        ]
        answered = True
        break
    if not answered:  # nobody answered: the queue's timeout
        t += 5
        frames.append((t, frame("QueueCallerLeave", "agent", caller, in_queue)))
    frames.append((t + 0.5, frame("Hangup", "call", caller, hangup)))
    return frames


def synthetic_stream(count: int, concurrent: int, seed: int = 7) -> list[str]:
    """`count` frames of calls starting so that about `concurrent` are in progress at once."""
    rng = random.Random(seed)
    merged: list[tuple[float, int, str]] = []
    n, sequence = 0, 0
    while len(merged) < count * 1.2:
        start = n * 60.0 / concurrent  # calls last about a minute on average
        for offset, frame in one_call(n, rng):
            merged.append((start + offset, sequence, frame))
            sequence += 1
        n += 1
    heapq.heapify(merged)
    return [heapq.heappop(merged)[2] for _ in range(count)]


def login_events() -> list[dict[str, str]]:
    """What a resync at login reads: every agent a member of both queues."""
    events = [{"Event": "QueueParams", "Queue": q, "ServiceLevel": "20"} for q in QUEUES]
    for queue in QUEUES:
        for agent in AGENTS:
            events.append(
                {"Event": "QueueMember", "Queue": queue, "Location": agent, "Name": agent,
                 "Status": "1", "Paused": "0", "PausedReason": "", "InCall": "0", "Wrapuptime": "0"}
            )  # fmt: skip
    return [*events, {"Event": "QueueStatusComplete"}, {"Event": "CoreShowChannelsComplete"}]


def fresh_state() -> LiveState:
    state = LiveState()
    state.resync_begin()
    now = datetime.now(UTC)
    for event in login_events():
        state.apply(event, now)
    return state


def parse_and_apply(data: bytes, chunk: int = 65536) -> tuple[float, float, int]:
    """CPU and wall seconds to parse and apply the stream, and how many events were applied."""
    state, reader, applied = fresh_state(), FrameReader(), 0
    apply = state.apply
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(0, len(data), chunk):
        for headers in reader.feed(data[i : i + chunk]):
            apply(headers, datetime.now(UTC))
            applied += 1
    return time.process_time() - cpu, time.perf_counter() - wall, applied


def apply_only(events: list[dict[str, str]]) -> tuple[float, float, LiveState]:
    state = fresh_state()
    apply = state.apply
    base = datetime.now(UTC)
    times = [base + timedelta(milliseconds=i) for i in range(len(events))]
    cpu, wall = time.process_time(), time.perf_counter()
    for headers, at in zip(events, times, strict=True):
        apply(headers, at)
    return time.process_time() - cpu, time.perf_counter() - wall, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--concurrent", type=int, default=40)
    args = parser.parse_args()

    frames = synthetic_stream(args.events, args.concurrent)
    data = ("Asterisk Call Manager/9.0.0\r\n" + "".join(frames)).encode()
    parsed = FrameReader().feed(data)
    assert len(parsed) == args.events, len(parsed)
    print(
        f"stream: {args.events} events, {len(data) / 1e6:.1f} MB, ~{args.concurrent} calls at once"
    )

    cpu, wall, applied = parse_and_apply(data)
    print(f"parse+apply: {applied / cpu:,.0f} events/s of CPU ({applied / wall:,.0f} wall)")
    cpu, wall, state = apply_only(parsed)
    print(f"apply only:  {len(parsed) / cpu:,.0f} events/s of CPU ({len(parsed) / wall:,.0f} wall)")
    queues = state.queue_snapshots(datetime.now(UTC) + timedelta(milliseconds=len(parsed)))
    answered = sum(q.answered_today for q in queues)
    abandoned = sum(q.abandoned_today for q in queues)
    print(
        f"state after the stream: {answered} answered, {abandoned} abandoned, "
        f"{state.calls_in_progress} calls in progress"
    )


if __name__ == "__main__":
    main()

"""The AMI frame parser keeps Russian text intact however TCP splits the stream."""

from __future__ import annotations

import asyncio

import pytest
from panoramisk.ami_protocol import AMIProtocol

from callcenter.channels.telephony.ami import AmiClient
from callcenter.channels.telephony.amiframes import (
    AmiEvent,
    AmiFrameError,
    EventRoutes,
    FrameReader,
    event_frames,
    event_of,
    lazy_event,
    parse_frame,
)

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
AGENT_CALLED = (
    "Event: AgentCalled\r\nChannel: PJSIP/trunk-00000002\r\nCallerIDNum: +79161234567\r\n"
    "CallerIDName: Иван Петров\r\nLinkedid: 1795817157.2\r\nQueue: support\r\n"
    "MemberName: Agent One\r\nInterface: PJSIP/1001\r\n\r\n"
)
NEWCHANNEL = (
    "Event: Newchannel\r\nChannel: PJSIP/trunk-00000003\r\nCallerIDName: Ёлкина Жанна 🙂\r\n"
    "ChanVariable: CC_CUSTOMER_ID=42\r\nChanVariable: CC_QUEUE_PRIO=5\r\nAccountCode:\r\n\r\n"
)
STREAM = BANNER + (AGENT_CALLED + "Response: Success\r\nActionID: 1\r\n\r\n" + NEWCHANNEL).encode()


def feed_in_two(stream: bytes, cut: int) -> tuple[FrameReader, list[dict[str, str]]]:
    reader = FrameReader()
    return reader, reader.feed(stream[:cut]) + reader.feed(stream[cut:])


def multibyte_cuts(stream: bytes) -> list[int]:
    """Positions that fall inside a multi-byte UTF-8 character."""
    return [i for i in range(1, len(stream)) if stream[i] & 0xC0 == 0x80]


def test_whole_stream_parses_into_frames():
    reader, frames = feed_in_two(STREAM, len(STREAM))
    assert reader.banner == "Asterisk Call Manager/9.0.0"
    assert [f.get("Event", f.get("Response")) for f in frames] == [
        "AgentCalled",
        "Success",
        "Newchannel",
    ]
    assert frames[0]["CallerIDName"] == "Иван Петров"
    event = event_of(frames[2])
    assert event == AmiEvent("Newchannel", frames[2])
    assert event.headers["CallerIDName"] == "Ёлкина Жанна 🙂"
    assert event.values("ChanVariable") == ["CC_CUSTOMER_ID=42", "CC_QUEUE_PRIO=5"]
    assert event.headers["AccountCode"] == ""


def test_every_split_position_yields_identical_frames():
    _, expected = feed_in_two(STREAM, len(STREAM))
    assert len(multibyte_cuts(STREAM)) >= 20  # the stream really exercises split characters
    for cut in range(1, len(STREAM)):
        _, frames = feed_in_two(STREAM, cut)
        assert frames == expected, f"cut at byte {cut}"


def test_byte_by_byte_feeding_yields_identical_frames():
    _, expected = feed_in_two(STREAM, len(STREAM))
    reader = FrameReader()
    frames = [frame for i in range(len(STREAM)) for frame in reader.feed(STREAM[i : i + 1])]
    assert frames == expected


def test_plain_panoramisk_loses_split_characters():
    """Why amiframes exists: panoramisk 1.4 decodes every read on its own."""
    stream = AGENT_CALLED.encode()
    cut = multibyte_cuts(stream)[0]  # inside the "И" of "Иван"
    received = []

    class Factory:
        def dispatch(self, message):
            received.append(message)

    protocol = AMIProtocol()
    protocol.connection_made(transport=None)
    protocol.factory, protocol.encoding = Factory(), "utf-8"
    protocol.data_received(stream[:cut])
    protocol.data_received(stream[cut:])

    assert received[0]["CallerIDName"] != "Иван Петров"
    _, frames = feed_in_two(stream, cut)
    assert frames[0]["CallerIDName"] == "Иван Петров"


def test_windows_1251_caller_name_is_recovered():
    frame = "Event: Newchannel\r\nCallerIDName: Иван Петров\r\n\r\n".encode("cp1251")
    [headers] = FrameReader().feed(frame)
    assert headers["CallerIDName"] == "Иван Петров"


def test_header_without_space_after_colon():
    assert parse_frame("Event: Hangup\r\nCause-txt:\r\nUniqueid: 1.2") == {
        "Event": "Hangup",
        "Cause-txt": "",
        "Uniqueid": "1.2",
    }


def test_endless_frame_is_refused():
    reader = FrameReader()
    reader.feed(BANNER)
    with pytest.raises(AmiFrameError):
        for _ in range(20):
            reader.feed(b"X-Junk: " + b"a" * 100_000 + b"\r\n")


def unsolicited_events(
    frames: list[bytes], action_pending: bool
) -> tuple[list[AmiEvent], list[bytes]]:
    """What the AMI client's consumer builds for a listener of every event."""
    frames, others = event_frames(frames, action_pending)
    routes = EventRoutes([(None, None)])
    events = []
    for frame in frames:
        name, listeners = routes[frame.split(b"\r\n", 1)[0]]
        if listeners:
            events.append(lazy_event(name, frame))
    return events, others


def events_in_two(stream: bytes, cut: int, action_pending: bool = False) -> list[AmiEvent]:
    reader = FrameReader()
    events = []
    for part in (stream[:cut], stream[cut:]):
        events += unsolicited_events(reader.feed_frames(part), action_pending)[0]
    return events


def test_undecoded_events_decode_whole_characters_at_every_split_position():
    expected = [
        AmiEvent("AgentCalled", parse_frame(AGENT_CALLED[:-4])),
        AmiEvent("Newchannel", parse_frame(NEWCHANNEL[:-4])),
    ]
    for cut in range(1, len(STREAM)):
        events = events_in_two(STREAM, cut)
        assert [e.name for e in events] == ["AgentCalled", "Newchannel"], f"cut at byte {cut}"
        assert events == expected, f"cut at byte {cut}"
    assert events[1].values("ChanVariable") == ["CC_CUSTOMER_ID=42", "CC_QUEUE_PRIO=5"]
    assert events[0].headers["CallerIDName"] == "Иван Петров"


def test_responses_and_events_of_a_pending_action_are_not_unsolicited_events():
    member = b"Event: QueueMember\r\nActionID: 7\r\nQueue: support\r\nName: \xd0\x90\r\n\r\n"
    stream = BANNER + AGENT_CALLED.encode() + member + b"Response: Success\r\nActionID: 7\r\n\r\n"
    reader = FrameReader()
    frames = reader.feed_frames(stream)

    events, others = unsolicited_events(frames, True)
    assert [e.name for e in events] == ["AgentCalled"]
    assert [parse_frame(f.decode())["ActionID"] for f in others] == ["7", "7"]
    # With no action waiting, an event with an ActionID is an event like any other.
    events, others = unsolicited_events(frames, False)
    assert [e.name for e in events] == ["AgentCalled", "QueueMember"]
    assert events[1].headers["Name"] == "А"
    assert others == []  # the unanswered response is no event: no listener gets it


async def test_a_listener_gets_only_the_events_it_asked_for():
    async def fake_ami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        request = await reader.readuntil(b"\r\n\r\n")
        action_id = request.split(b"ActionID: ")[1].split(b"\r\n")[0]
        writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
        writer.write(b"Event: FullyBooted\r\n\r\n" + (AGENT_CALLED + NEWCHANNEL).encode())
        await reader.read()
        writer.close()

    server = await asyncio.start_server(fake_ami, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    everything, new_channels = [], []
    client = AmiClient("127.0.0.1", port, "u", "s", ping_interval=3600)
    client.add_listener(everything.append)
    client.add_listener(new_channels.append, events={"Newchannel"})
    try:
        await client.start(timeout=5)
        async with asyncio.timeout(5):
            while len(everything) < 3:
                await asyncio.sleep(0.01)
    finally:
        await client.stop()
        server.close()
    assert [e.name for e in everything] == ["FullyBooted", "AgentCalled", "Newchannel"]
    assert [e.headers["CallerIDName"] for e in new_channels] == ["Ёлкина Жанна 🙂"]


async def test_a_removed_listener_gets_nothing_more():
    sent = asyncio.Event()

    async def fake_ami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        request = await reader.readuntil(b"\r\n\r\n")
        action_id = request.split(b"ActionID: ")[1].split(b"\r\n")[0]
        writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")
        writer.write(b"Event: FullyBooted\r\n\r\n" + AGENT_CALLED.encode())
        await sent.wait()
        writer.write(NEWCHANNEL.encode())
        await reader.read()
        writer.close()

    server = await asyncio.start_server(fake_ami, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kept, removed = [], []
    client = AmiClient("127.0.0.1", port, "u", "s", ping_interval=3600)
    client.add_listener(kept.append)
    client.add_listener(removed.append)
    try:
        await client.start(timeout=5)
        async with asyncio.timeout(5):
            while len(removed) < 2:
                await asyncio.sleep(0.01)
        client.remove_listener(removed.append)
        sent.set()
        async with asyncio.timeout(5):
            while len(kept) < 3:
                await asyncio.sleep(0.01)
    finally:
        await client.stop()
        server.close()
    assert [e.name for e in kept] == ["FullyBooted", "AgentCalled", "Newchannel"]
    assert [e.name for e in removed] == ["FullyBooted", "AgentCalled"]


def test_routes_skip_frames_that_are_no_event_and_stay_bounded():
    everything, hangups = object(), object()
    routes = EventRoutes([(everything, None), (hangups, frozenset({"Hangup"}))])
    assert routes[b"Event: Hangup"] == ("Hangup", (everything, hangups))
    assert routes[b"Event: Newexten"] == ("Newexten", (everything,))
    assert routes[b"Response: Success"] == ("", ())
    assert routes["Event: Ёлка".encode()] == ("Ёлка", (everything,))
    for n in range(5000):
        assert routes[f"Event: Junk{n}".encode()][0] == f"Junk{n}"
    assert len(routes) <= 1024

"""Reading Asterisk's CDR file (asterisk-config/cdr_custom.conf) after an AMI outage: inbound
calls that never reached a queue become CallEnded records, queue calls are left to queue_log,
hostile or undecodable caller ids and malformed lines never stop the reading, and the
checkpoint survives rotation and truncation (the real Asterisk: tests/reliability/
test_serve_kill_calls.py)."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest

from callcenter.channels.telephony.cdrlog import (
    FIELDS,
    MAX_LINES,
    CdrLog,
    caller_name,
    cdr_log_of,
    parse,
    record,
)
from callcenter.channels.telephony.pbxconfig import CONFIG_DIR
from callcenter.config import ConfigError, Settings
from callcenter.models import CallOutcome


def _q(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def line(
    linkedid: str,
    *,
    uniqueid: str | None = None,
    start: str = "1795840982.759746",
    answer: str = "0.000000",
    end: str = "1795840985.761192",
    src: str = "+79161234567",
    clid: str = '"Иван Петров" <+79161234567>',
    dcontext: str = "inbound",
    channel: str = "PJSIP/trunk-00000000",
    dstchannel: str = "",
    lastapp: str = "AGI",
    disposition: str = "ANSWERED",
) -> str:
    values = [linkedid, uniqueid or linkedid, start, answer, end, src, clid, dcontext, channel]
    values += [dstchannel, lastapp, disposition]
    return ",".join(_q(v) for v in values) + "\n"


# Lines as the real Asterisk 22 wrote them (tests/reliability and a manual run).
REJECTED = line("1795840982.0", dcontext="from-trunk", lastapp="Hangup", disposition="NO ANSWER")
GREETING = line("1795841022.0", answer="1795841022.587514", end="1795841025.593852")
QUEUED = line(
    "1795840986.3",
    start="1795840986.895859",
    answer="1795840986.896336",
    end="1795840990.607930",
    src="+79160000000",
    clid='"Клиент support 0" <+79160000000>',
    channel="PJSIP/trunk-00000002",
    dstchannel="PJSIP/2001-00000003",
    lastapp="Queue",
) + line(
    "1795840986.3",
    start="1795840990.608366",
    answer="1795840990.608366",
    end="1795840990.608763",
    src="+79160000000",
    clid='"Клиент support 0" <+79160000000>',
    channel="PJSIP/trunk-00000002",
    lastapp="Hangup",
)
DIRECT = line(
    "1795841026.2",
    start="1795841026.604028",
    answer="1795841026.605788",
    end="1795841056.324411",
    dstchannel="PJSIP/2001-00000002",
    lastapp="Dial",
) + line(
    "1795841026.2",
    start="1795841056.325554",
    answer="1795841056.325554",
    end="1795841056.326029",
    lastapp="Hangup",
)


def test_the_mapping_in_cdr_custom_conf_writes_the_fields_parse_reads():
    text = (CONFIG_DIR / "cdr_custom.conf").read_text(encoding="utf-8")
    mapping = next(row for row in text.splitlines() if "=>" in row and not row.startswith(";"))
    path, _, fields = mapping.partition(" => ")
    assert path == "${RUN_DIR}/log/cdr.csv"
    names = re.findall(r"CDR\((\w+)", fields)
    assert tuple(names) == FIELDS
    assert fields.count("CSV_QUOTE") == len(FIELDS)  # every value quoted, quotes doubled


def test_calls_that_never_reached_a_queue_are_found_and_queue_calls_left_to_queue_log():
    data = (REJECTED + QUEUED + GREETING + DIRECT).encode()
    ended, resume = parse(data, 1000)
    assert resume == 1000 + len(data)
    by_id = {call.linkedid: call for call in ended}
    assert list(by_id) == ["1795840982.0", "1795841022.0", "1795841026.2"]

    rejected, greeting, direct = by_id.values()
    for call in (rejected, greeting):
        assert call.outcome is CallOutcome.MISSED and call.queue is None
        assert call.agent_interface is None and call.answered_at is None
        assert (call.wait_seconds, call.talk_seconds) == (0, 0)
        assert (call.caller_number, call.caller_name) == ("+79161234567", "Иван Петров")
    assert greeting.started_at.timestamp() == pytest.approx(1795841022.759746)
    assert greeting.ended_at.timestamp() == pytest.approx(1795841025.593852)

    assert direct.outcome is CallOutcome.ANSWERED and direct.agent_interface == "PJSIP/2001"
    assert direct.queue is None and direct.answered_at is not None
    assert (direct.wait_seconds, direct.talk_seconds) == (0, 29)
    assert direct.ended_at.timestamp() == pytest.approx(1795841056.326029)


def test_a_preferred_agent_who_did_not_answer_leaves_a_missed_call():
    data = line("9.1", dstchannel="PJSIP/1001-00000001", lastapp="Dial", disposition="NO ANSWER")
    (call,), _ = parse(data.encode())
    assert call.outcome is CallOutcome.MISSED and call.agent_interface is None


def test_calls_that_are_not_inbound_customer_calls_are_ignored():
    data = (
        line("5.1", dcontext="agents", channel="PJSIP/1001-00000001", lastapp="Dial")
        + line("5.2", dcontext="outbound", channel="PJSIP/1002-00000002", lastapp="Dial")
        + line("5.3", dcontext="", channel="PJSIP/trunk-00000003", lastapp="Stasis")
        # A second channel of an inbound call is not the caller.
        + line("5.4", uniqueid="5.5", dcontext="inbound", lastapp="AppDial")
    )
    assert parse(data.encode())[0] == []


HOSTILE = [
    'Robert"); DROP TABLE calls;--',
    '"quoted" name',
    "a,b,c",
    "two\nlines",
    '<+70000000000> "x" <',
    '\\"backslash\\',
    "",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_caller_names_are_read_whole(name: str):
    clid = f'"{name}" <+79161234567>' if name else "+79161234567"
    data = line("7.1", clid=clid) + line("7.2", clid=clid)
    ended, resume = parse(data.encode())
    assert [call.caller_name for call in ended] == [name, name]
    assert [call.caller_number for call in ended] == ["+79161234567"] * 2
    assert resume == len(data.encode())


def test_caller_ids_without_a_number_or_a_name():
    assert caller_name("+79161234567", "+79161234567") == ""
    assert caller_name("", "") == ""
    assert caller_name("Anonymous", "") == "Anonymous"
    assert caller_name('"" <+79161234567>', "+79161234567") == ""


def test_a_caller_name_in_cp1251_is_decoded_and_the_rest_of_the_file_still_read():
    cp1251 = line("8.1", clid='"Пётр Сидоров" <+79031112233>', src="+79031112233")
    data = cp1251.encode("cp1251") + GREETING.encode()
    ended, _ = parse(data)
    assert [(c.linkedid, c.caller_name) for c in ended] == [
        ("8.1", "Пётр Сидоров"),
        ("1795841022.0", "Иван Петров"),
    ]
    # Bytes that are neither UTF-8 nor cp1251 text do not stop anything either.
    broken = line("8.2").encode().replace("Иван".encode(), b"\x98\xff\xfe")
    (call,), _ = parse(broken)
    assert call.linkedid == "8.2" and "\ufffd" in call.caller_name


def test_malformed_lines_are_logged_and_skipped(caplog: pytest.LogCaptureFixture):
    bad = [
        "garbage\n",
        "\n",
        '"1.1","1.1","not a time","0","1.5","x","x","inbound","c","","AGI","ANSWERED"\n',
        '"1.2","1.2","1","0"\n',  # too few fields
        line("1.3")[:-1] + ',"extra"\n',  # too many
        '"","","1","0","2","x","x","inbound","c","","AGI","ANSWERED"\n',  # no call id
        '"1.4","1.4","1","0","2","x","x"x","inbound","c","","AGI","ANSWERED"\n',  # bad quote
        "\x00\x01\x02\n",
    ]
    data = ("".join(bad) + GREETING).encode()
    with caplog.at_level(logging.WARNING, "callcenter.channels.telephony.cdrlog"):
        ended, resume = parse(data)
    assert [call.linkedid for call in ended] == ["1795841022.0"]
    assert resume == len(data)
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == len(bad)


def test_a_record_still_being_written_is_left_for_the_next_read():
    whole = GREETING.encode()
    half = REJECTED.encode()[:40]
    ended, resume = parse(whole + half, 10)
    assert [c.linkedid for c in ended] == ["1795841022.0"] and resume == 10 + len(whole)


def test_a_quote_that_never_closes_costs_its_line_only():
    # Asterisk writes a record at once: a line whose quote is still open when the file ends,
    # or after MAX_LINES lines, is damaged, and the lines after it are records again.
    open_quote = line("3.1", clid='"two\nlines" <+7916>').encode()
    cut = open_quote[: open_quote.index(b"\n") + 1]
    assert parse(cut) == ([], len(cut))
    ended, _ = parse(cut + GREETING.encode() * MAX_LINES)
    assert [c.linkedid for c in ended] == ["1795841022.0"]
    ended, resume = parse(open_quote)  # whole, the line break is part of the name
    assert resume == len(open_quote) and [c.caller_name for c in ended] == ["two\nlines"]


def test_record_fields():
    rec = record(REJECTED.encode())
    assert (rec.linkedid, rec.dcontext, rec.lastapp, rec.answer) == (
        "1795840982.0",
        "from-trunk",
        "Hangup",
        None,
    )
    with pytest.raises(ValueError):
        record(b'"1","1","-5","0","2","x","x","inbound","c","","AGI","ANSWERED"\n')


def _cdr(tmp_path: Path) -> tuple[CdrLog, Path]:
    path = tmp_path / "cdr.csv"
    return CdrLog(path, tmp_path / "cdr.checkpoint"), path


def test_no_file_yet_then_every_call_in_it_is_new(tmp_path: Path):
    cdr, path = _cdr(tmp_path)
    ended, checkpoint = cdr.read()  # type: ignore[misc]  # Asterisk wrote nothing yet
    assert ended == [] and checkpoint.offset == 0
    cdr.save(checkpoint)
    path.write_text(REJECTED + GREETING, encoding="utf-8")
    ended, checkpoint = cdr.read()  # type: ignore[misc]
    assert [c.linkedid for c in ended] == ["1795840982.0", "1795841022.0"]
    cdr.save(checkpoint)
    path.unlink()  # rotated away: the checkpoint stays until the new file comes
    assert cdr.read() is None


def test_first_start_skips_what_ended_before_then_reads_on_from_the_checkpoint(tmp_path: Path):
    cdr, path = _cdr(tmp_path)
    path.write_text(REJECTED, encoding="utf-8")
    ended, checkpoint = cdr.read()  # type: ignore[misc]
    assert ended == [] and checkpoint.offset == len(REJECTED.encode())
    cdr.save(checkpoint)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(GREETING + REJECTED.replace("1795840982.0", "2.0")[:30])
    ended, checkpoint = cdr.read()  # type: ignore[misc]
    assert [c.linkedid for c in ended] == ["1795841022.0"]
    assert checkpoint.offset == len((REJECTED + GREETING).encode())
    # Not saved (the records were not stored): the same calls are read again.
    assert [c.linkedid for c in cdr.read()[0]] == ["1795841022.0"]  # type: ignore[index]
    cdr.save(checkpoint)
    assert cdr.read()[0] == []  # type: ignore[index]


def test_a_rotated_file_is_read_to_its_end_then_the_new_one_from_its_start(tmp_path: Path):
    cdr, path = _cdr(tmp_path)
    path.write_text(REJECTED, encoding="utf-8")
    cdr.save(cdr.read()[1])  # type: ignore[index]
    with path.open("a", encoding="utf-8") as fh:
        fh.write(GREETING)
    path.rename(tmp_path / "cdr.csv.1")
    path.write_text(DIRECT, encoding="utf-8")
    ended, checkpoint = cdr.read()  # type: ignore[misc]
    assert [c.linkedid for c in ended] == ["1795841022.0", "1795841026.2"]
    assert checkpoint == type(checkpoint)(os.stat(path).st_ino, len(DIRECT.encode()))


def test_a_truncated_or_vanished_rotation_is_read_from_the_start(tmp_path: Path):
    cdr, path = _cdr(tmp_path)
    path.write_text(REJECTED + GREETING, encoding="utf-8")
    cdr.save(cdr.read()[1])  # type: ignore[index]
    path.write_text(DIRECT, encoding="utf-8")  # the same inode: truncated and written again
    assert [c.linkedid for c in cdr.read()[0]] == ["1795841026.2"]  # type: ignore[index]
    cdr.save(cdr.read()[1])  # type: ignore[index]
    path.write_text(REJECTED, encoding="utf-8")  # shorter than what was read
    assert [c.linkedid for c in cdr.read()[0]] == ["1795840982.0"]  # type: ignore[index]
    cdr.save(cdr.read()[1])  # type: ignore[index]
    path.unlink()  # rotated away and compressed: the rest of it is gone
    path.write_text(GREETING, encoding="utf-8")
    assert [c.linkedid for c in cdr.read()[0]] == ["1795841022.0"]  # type: ignore[index]


def test_a_damaged_checkpoint_reads_the_file_from_its_start(tmp_path: Path):
    cdr, path = _cdr(tmp_path)
    path.write_text(GREETING, encoding="utf-8")
    cdr.checkpoint_path.write_text("{not json", encoding="utf-8")
    assert [c.linkedid for c in cdr.read()[0]] == ["1795841022.0"]  # type: ignore[index]
    cdr.checkpoint_path.write_text(json.dumps({"inode": "x"}), encoding="utf-8")
    assert [c.linkedid for c in cdr.read()[0]] == ["1795841022.0"]  # type: ignore[index]


def test_one_cdr_file_and_checkpoint_per_server(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, cdr_path="/pbx/{server}/log/cdr.csv")
    cdr = cdr_log_of(settings, "msk")
    assert cdr is not None and cdr.path == Path("/pbx/msk/log/cdr.csv")
    assert cdr.checkpoint_path == tmp_path / "cdr-msk.checkpoint"
    only = cdr_log_of(Settings(data_dir=tmp_path, cdr_path="/var/log/asterisk/cdr.csv"), "")
    assert only is not None and only.checkpoint_path == tmp_path / "cdr.checkpoint"
    with pytest.raises(ConfigError):
        cdr_log_of(Settings(cdr_path="/var/log/asterisk/cdr.csv"), "msk")
    assert cdr_log_of(Settings(), "") is None


def test_docker_compose_gives_serve_the_cdr_file_beside_queue_log():
    compose = (CONFIG_DIR.parent / "docker-compose.yml").read_text(encoding="utf-8")
    paths = dict(re.findall(r"CALLCENTER_(QUEUE_LOG|CDR)_PATH: (\S+)", compose))
    cdr, queue_log = Path(paths["CDR"]), Path(paths["QUEUE_LOG"])
    # The app mounts Asterisk's log folder (RUN_DIR/log), where cdr_custom.conf writes cdr.csv.
    assert cdr.parent == queue_log.parent and cdr.parent.name == "log"
    assert cdr.name == "cdr.csv"

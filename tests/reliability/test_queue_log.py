"""Reading Asterisk's queue_log after an AMI outage: finished queue calls become CallEnded
records, a call still queued holds the checkpoint back, a half-written line is read later,
and a rotated file or the first start are handled (the real Asterisk: test_serve_kill_calls)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callcenter.channels.telephony.queuelog import QueueLog, parse, queue_log_of
from callcenter.config import ConfigError, Settings
from callcenter.models import CallOutcome

LOG = (
    "1700000000|NONE|NONE|NONE|QUEUESTART|\n"
    "1700000010|srv-1.1|support|NONE|ENTERQUEUE||+79161234567|1\n"
    "1700000012|srv-1.2|sales|NONE|ENTERQUEUE||+79260000001|1\n"
    "1700000015|srv-1.1|support|Agent 2001|CONNECT|5|srv-1.3|1\n"
    "1700000020|srv-1.2|sales|NONE|ABANDON|1|1|8\n"
    "1700000021|srv-1.4|support|NONE|ENTERQUEUE||+79160000004|2\n"
    "1700000075|srv-1.1|support|Agent 2001|COMPLETECALLER|5|60|1\n"
)


def test_finished_calls_with_outcome_agent_and_times_and_the_oldest_open_call_kept():
    data = LOG.encode()
    ended, resume = parse(data, 100, {"Agent 2001": "PJSIP/2001"})
    by_id = {call.linkedid: call for call in ended}
    assert set(by_id) == {"srv-1.1", "srv-1.2"}
    talked, gave_up = by_id["srv-1.1"], by_id["srv-1.2"]
    assert talked.outcome is CallOutcome.ANSWERED and talked.agent_interface == "PJSIP/2001"
    assert (talked.queue, talked.caller_number) == ("support", "+79161234567")
    assert (talked.wait_seconds, talked.talk_seconds) == (5, 60)
    assert talked.started_at < talked.answered_at < talked.ended_at  # type: ignore[operator]
    assert gave_up.outcome is CallOutcome.ABANDONED and gave_up.agent_interface is None
    assert (gave_up.wait_seconds, gave_up.talk_seconds, gave_up.queue) == (8, 0, "sales")
    assert resume == 100 + data.index(b"1700000021")  # srv-1.4 is still queued


def test_a_half_written_last_line_is_left_for_the_next_read():
    data = LOG.encode() + b"1700000080|srv-1.4|support|NONE|ABAN"
    ended, resume = parse(data[data.index(b"1700000021") :])
    assert ended == [] and resume == 0
    ended, resume = parse(b"1700000021|srv-1.4|support|NONE|ENTERQUEUE||+7916|2\n")
    assert ended == [] and resume == 0


def test_first_start_records_nothing_then_only_calls_ended_since(tmp_path: Path):
    path, checkpoint = tmp_path / "queue_log", tmp_path / "queue_log.checkpoint"
    path.write_text(LOG, encoding="utf-8")
    log = QueueLog(path, checkpoint)
    found = log.read()
    assert found is not None and found[0] == []  # calls before the product ran are not imported
    log.save(found[1])
    with path.open("a", encoding="utf-8") as fh:
        fh.write("1700000090|srv-1.4|support|NONE|EXITWITHTIMEOUT|1|2|69\n")
    found = log.read()
    assert found is not None
    assert [(c.linkedid, c.outcome) for c in found[0]] == [("srv-1.4", CallOutcome.TIMEOUT)]
    log.save(found[1])
    again = log.read()
    assert again is not None and again[0] == []


def test_a_rotated_file_is_read_from_its_start(tmp_path: Path):
    path, checkpoint = tmp_path / "queue_log", tmp_path / "queue_log.checkpoint"
    checkpoint.write_text(json.dumps({"inode": 1, "offset": 10**6}), encoding="utf-8")
    path.write_text(LOG, encoding="utf-8")
    found = QueueLog(path, checkpoint).read()
    assert found is not None and {c.linkedid for c in found[0]} == {"srv-1.1", "srv-1.2"}


def test_no_queue_log_yet(tmp_path: Path):
    assert QueueLog(tmp_path / "queue_log", tmp_path / "checkpoint").read() is None


def test_one_file_per_server(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, queue_log_path="/pbx/{server}/log/queue_log")
    log = queue_log_of(settings, "msk")
    assert log is not None and log.path == Path("/pbx/msk/log/queue_log")
    assert log.checkpoint_path == tmp_path / "queue_log-msk.checkpoint"
    with pytest.raises(ConfigError):
        queue_log_of(Settings(queue_log_path="/var/log/asterisk/queue_log"), "msk")
    assert queue_log_of(Settings(), "") is None

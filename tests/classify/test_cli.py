"""`callcenter classify` as a user runs it: lines in, JSON lines out, whatever the input."""

import io
import json
import subprocess
import sys
from pathlib import Path

from callcenter.classify.cli import decode_line, run

REPO = Path(__file__).resolve().parents[2]


def _run_module(stdin: bytes) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "callcenter.classify.cli"],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]


def test_run_with_text_streams():
    stdin = io.StringIO("где мой заказ №12345?\n\nспасибо\r\nrefund for order 777001 please")
    stdout = io.StringIO()
    assert run(stdin, stdout) == 0
    assert [json.loads(line) for line in stdout.getvalue().splitlines()] == [
        {"intents": ["delivery"], "order_numbers": ["12345"]},
        {"intents": [], "order_numbers": []},
        {"intents": [], "order_numbers": []},
        {"intents": ["refund"], "order_numbers": ["777001"]},
    ]


def test_module_answers_each_line_in_order():
    lines = "заказ 45821 не пришел\n\nденьги списали дважды, верните деньги\nHello\n"
    assert _run_module(lines.encode()) == [
        {"intents": ["delivery"], "order_numbers": ["45821"]},
        {"intents": [], "order_numbers": []},
        {"intents": ["payment", "refund"], "order_numbers": []},
        {"intents": [], "order_numbers": []},
    ]


def test_module_reads_legacy_russian_encodings():
    message = "где мой заказ 12345? ёлки\n"
    expected = {"intents": ["delivery"], "order_numbers": ["12345"]}
    for encoding in ("utf-8", "cp1251", "koi8_r"):
        assert _run_module(message.encode(encoding)) == [expected], encoding


def test_module_survives_garbage():
    stdin = b"\xff\xfe\x00\x01 garbage\n\x00\n\xc3\x28 broken utf-8\n" + b"9" * 100_000 + b"\n"
    results = _run_module(stdin)
    assert len(results) == 4
    assert all(r == {"intents": [], "order_numbers": []} for r in results)


def test_empty_input_gives_no_output():
    assert _run_module(b"") == []


def test_decode_line_picks_the_right_legacy_code_page():
    text = "Чек не пришёл, верните деньги"
    assert decode_line(text.encode("cp1251")) == text
    assert decode_line(text.encode("koi8_r")) == text
    assert decode_line("\ufeffзаказ".encode()) == "заказ"

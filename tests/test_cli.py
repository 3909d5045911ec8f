"""The ``callcenter`` command as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "callcenter.cli"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    clean["CALLCENTER_DATA_DIR"] = str(tmp_path)
    return clean


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_migrate_user_add_and_seed(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "migrate").returncode == 0
    assert (tmp_path / "callcenter.db").exists()

    added = run(
        env,
        "user",
        "add",
        "anna",
        "--role",
        "agent",
        "--endpoint",
        "PJSIP/1001",
        "--password-stdin",
        stdin="correct horse\n",
    )
    assert added.returncode == 0, added.stderr
    assert "created agent anna on PJSIP/1001" in added.stdout

    generated = run(env, "user", "add", "boss", "--role", "admin")
    assert generated.returncode == 0
    assert "password: " in generated.stdout

    seeded = run(env, "seed", "--customers", "20", "--quiet")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 20 customers" in seeded.stdout and "sqlite" in seeded.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("user", "add", "anna", "--role", "agent", "--password-stdin"), "short\n", "at least 8"),
        (("user", "add", "Bad Name!", "--role", "agent"), "", "username 'Bad Name!'"),
        (("user", "add", "x1", "--role", "agent", "--endpoint", "SIP/1;evil"), "", "PJSIP/1001"),
    ],
)
def test_bad_user_input_is_refused_with_a_clear_message(
    env: dict[str, str], args: tuple[str, ...], stdin: str, message: str
) -> None:
    assert run(env, "migrate").returncode == 0
    result = run(env, *args, stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_setting_is_reported_not_a_traceback(env: dict[str, str]) -> None:
    env["CALLCENTER_WEB_PORT"] = "eighty"
    result = run(env, "migrate")
    assert result.returncode == 2
    assert "web_port" in result.stderr and "Traceback" not in result.stderr


def test_classify_writes_one_json_object_per_input_line(env: dict[str, str]) -> None:
    lines = "Мой заказ №12345 не пришёл\n\nПришлите чек по заказу 55501\n"
    result = run(env, "classify", stdin=lines)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        '{"intents": ["delivery"], "order_numbers": ["12345"]}',
        '{"intents": [], "order_numbers": []}',
        '{"intents": ["invoice"], "order_numbers": ["55501"]}',
    ]

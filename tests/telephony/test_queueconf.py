"""Rendering and validation of queues_managed.conf: hostile names and values never become
config lines or sections; the file is replaced in one piece."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.pbxconfig import PbxSettings, render
from callcenter.channels.telephony.queueconf import (
    LiveQueueSettings,
    Member,
    QueueApplier,
    QueueConfigError,
    QueueDefinition,
    ReapplyAtLogin,
    check_name,
    inbound_number,
    member_name,
    parse_int,
    reload_action,
    render_queues,
    sections,
    settings_of,
    validate,
    write_atomically,
)
from callcenter.channels.telephony.state import LiveState, QueueSettings
from callcenter.models import Queue, QueueMember

HOSTILE_NAMES = [
    "",
    "general",
    "queue-defaults",
    "queue-common",
    "Support",
    "sales]\n[evil",
    "a\nmember => PJSIP/9999",
    "a;b",
    "[x]",
    "a b",
    "-lead",
    "x" * 65,
    "очередь",
    "a\rb",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_refused_everywhere(name: str) -> None:
    assert check_name(name) is not None
    with pytest.raises(QueueConfigError) as refused:
        validate(QueueDefinition(name=name))
    assert refused.value.errors == {"name": "queues.bad_name"}
    with pytest.raises(QueueConfigError):
        render_queues([QueueDefinition(name=name)])
    with pytest.raises(ValueError):
        reload_action(name)


def test_good_names_pass_and_taken_ones_are_named() -> None:
    assert check_name("billing") is None and check_name("vip_2-ru") is None
    assert check_name("support", taken={"support", "sales"}) == "queues.name_taken"


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (Member("PJSIP/1001\nmember => PJSIP/6666"), "queues.bad_member"),
        (Member("SIP/1001"), "queues.bad_member"),
        (Member("Local/1001@from-internal"), "queues.bad_member"),
        (Member("PJSIP/1001", penalty=-1), "queues.out_of_range"),
        (Member("PJSIP/1001", penalty=101), "queues.out_of_range"),
        (Member("PJSIP/1001", name="Anna,1,evil"), "queues.bad_member"),
        (Member("PJSIP/1001", name="Anna\n[evil]"), "queues.bad_member"),
        (Member("PJSIP/1001", name="Anna ; comment"), "queues.bad_member"),
    ],
)
def test_hostile_members_are_refused(member: Member, message: str) -> None:
    with pytest.raises(QueueConfigError) as refused:
        validate(QueueDefinition(name="billing", members=(member,)))
    assert refused.value.errors == {"members": message}


def test_out_of_range_values_name_their_field() -> None:
    queue = QueueDefinition(
        name="billing",
        strategy="ringall\nmaxlen=0",
        ring_timeout_seconds=0,
        wrapup_seconds=3601,
        max_callers=-1,
        service_level_seconds=0,
    )
    with pytest.raises(QueueConfigError) as refused:
        validate(queue)
    assert refused.value.errors == {
        "strategy": "queues.bad_strategy",
        "ring_timeout_seconds": "queues.out_of_range",
        "wrapup_seconds": "queues.out_of_range",
        "max_callers": "queues.out_of_range",
        "service_level_seconds": "queues.out_of_range",
    }


def test_a_member_twice_is_refused() -> None:
    twice = (Member("PJSIP/1001"), Member("PJSIP/1001", penalty=2))
    with pytest.raises(QueueConfigError):
        validate(QueueDefinition(name="billing", members=twice))


@pytest.mark.parametrize("text", ["1e3", "12a", "1\n2", " 0x10", "9" * 10, "1.5"])
def test_form_integers_are_plain_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        parse_int(text)


def test_form_integers() -> None:
    assert parse_int(" 42 ") == 42 and parse_int("", blank=7) == 7 and parse_int(None) is None


def test_rendered_file_has_one_section_per_queue_from_the_template() -> None:
    text = render_queues(
        [
            QueueDefinition(
                name="vip",
                strategy="leastrecent",
                ring_timeout_seconds=20,
                wrapup_seconds=5,
                max_callers=10,
                service_level_seconds=30,
                members=(Member("PJSIP/1002", 3, "Борис"), Member("PJSIP/1001")),
            ),
            QueueDefinition(name="billing"),
        ]
    )
    assert sections(text) == {"billing", "vip"}
    assert text.index("[billing]") < text.index("[vip]")
    vip = text[text.index("[vip]") :]
    assert vip.splitlines() == [
        "[vip](queue-common)",
        "strategy = leastrecent",
        "timeout = 20",
        "servicelevel = 30",
        "maxlen = 10",
        "wrapuptime = 5",
        "member => PJSIP/1002,3,Борис",
        "member => PJSIP/1001,0,1001",
    ]
    billing = text[text.index("[billing]") : text.index("[vip]")]
    assert "wrapuptime" not in billing  # inherits the product-wide wrap-up
    assert "$" not in text


def test_the_same_name_twice_is_refused() -> None:
    with pytest.raises(QueueConfigError):
        render_queues([QueueDefinition(name="a"), QueueDefinition(name="a")])


def test_sections_ignore_comments() -> None:
    assert sections("[a]\n; [b]\nx = 1 ; [c]\n [d](tpl)\n") == {"a", "d"}


def test_write_atomically_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "queues_managed.conf"
    target.write_text("old\n")
    write_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["queues_managed.conf"]


def test_a_rerender_keeps_the_managed_file_and_queues_conf_includes_it(tmp_path: Path) -> None:
    settings = PbxSettings.ephemeral()
    render(settings, tmp_path, str(tmp_path))
    managed = tmp_path / "queues_managed.conf"
    assert "#include queues_managed.conf" in (tmp_path / "queues.conf").read_text()
    assert sections(managed.read_text()) == set()
    managed.write_text(render_queues([QueueDefinition(name="billing")]))
    render(settings, tmp_path, str(tmp_path))
    assert sections(managed.read_text()) == {"billing"}
    shipped = sections((tmp_path / "queues.conf").read_text())
    assert shipped == {"general", "queue-common", "queue-defaults", "support", "sales"}


def test_the_live_state_takes_a_queues_saved_settings_and_forgets_a_deleted_one() -> None:
    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    state = LiveState()
    state.resync_begin()
    state.apply({"Event": "QueueParams", "Queue": "billing", "ServiceLevel": "20"}, at)
    [before] = state.queue_snapshots(at)
    assert (before.service_level_seconds, before.abandoned_in_service_level) == (20, False)
    live = LiveQueueSettings([state])
    row = Queue(
        name="billing",
        service_level_seconds=45,
        abandoned_in_service_level=True,
        wrapup_seconds=7,
    )
    live.update(row)
    [after] = state.queue_snapshots(at)
    assert (after.service_level_seconds, after.abandoned_in_service_level) == (45, True)
    assert settings_of(row) == QueueSettings(45, True, 7)
    live.update(Queue(name="billing"), deleted=True)
    state.resync_begin()  # a queue made again under that name starts from Asterisk's figures
    state.apply({"Event": "QueueParams", "Queue": "billing", "ServiceLevel": "30"}, at)
    [again] = state.queue_snapshots(at)
    assert again.service_level_seconds == 30


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("Иванов, Иван", "Иванов Иван"),
        ("Anna\n[evil]\nmember => PJSIP/6666", "Anna evil member > PJSIP/6666"),
        ('a;b\\c"d', "a b c d"),
        ("x" * 100, "x" * 80),
    ],
)
def test_staff_names_are_made_safe_for_member_lines(name: str, written: str) -> None:
    assert member_name(name) == written
    text = render_queues([QueueDefinition("vip", members=(Member("PJSIP/1001", 0, written),))])
    assert text.splitlines()[-1] == f"member => PJSIP/1001,0,{written}"


class LoginAmi:
    """An AMI connection as ReapplyAtLogin sees it: logins counted, actions answered."""

    def __init__(self) -> None:
        self.connected = False
        self.logins = 0
        self.ok = True
        self.actions: list[dict[str, str]] = []

    async def send_action(self, action: Mapping[str, str], **_: Any) -> Any:
        self.actions.append(dict(action))
        return SimpleNamespace(ok=self.ok, headers={"Message": "" if self.ok else "refused"})


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def test_every_ami_login_rewrites_the_managed_file_and_reloads_all_queues(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A save that Asterisk did not take ("saved, not applied") reaches it at serve's start
    and after each reconnect; a failed re-apply is tried again."""
    async with sessions() as db, db.begin():
        queue = Queue(name="billing", managed=True, strategy="ringall")
        queue.members = [QueueMember(interface="PJSIP/1001", penalty=1, member_name="Anna")]
        db.add_all([queue, Queue(name="support")])
    path = tmp_path / "queues_managed.conf"
    ami = LoginAmi()
    reapply = ReapplyAtLogin(sessions, QueueApplier(path, [ami]), [ami], interval=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(reapply.run(stop))
    try:
        await asyncio.sleep(0.05)
        assert ami.actions == [] and not path.exists()  # not connected: nothing to reload
        ami.connected, ami.logins = True, 1
        await until(lambda: reapply.applied == 1)
        assert sections(path.read_text()) == {"billing"}  # support stays queues.conf's
        assert "member => PJSIP/1001,1,Anna" in path.read_text()
        assert ami.actions == [{"Action": "QueueReload", "Members": "yes", "Parameters": "yes"}]

        path.unlink()
        ami.ok, ami.logins = False, 2  # Asterisk restarted and refuses at first
        await until(lambda: len(ami.actions) >= 3)
        assert reapply.applied == 1
        ami.ok = True
        await until(lambda: reapply.applied == 2)
        assert sections(path.read_text()) == {"billing"}
        await asyncio.sleep(0.05)
        assert reapply.applied == 2  # once per login
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("+7 (495) 765-43-21", "74957654321"),
        ("8.800.555", "8800555"),
        ("100", "100"),
        ("  ", None),
    ],
)
def test_inbound_numbers_are_kept_as_the_digits_the_trunk_sends(
    text: str, digits: str | None
) -> None:
    assert inbound_number(text) == digits


@pytest.mark.parametrize("text", ["12", "1" * 16, "++7495", "7495\n1234", "7495,1", "s", "+"])
def test_anything_else_is_no_inbound_number(text: str) -> None:
    with pytest.raises(ValueError):
        inbound_number(text)


def test_a_reload_of_every_queue_names_none() -> None:
    assert reload_action(None) == {"Action": "QueueReload", "Members": "yes", "Parameters": "yes"}
    assert reload_action("billing")["Queue"] == "billing"

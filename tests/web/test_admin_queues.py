"""/admin/queues: admins list, create, edit and delete queues (validated next to each field,
audited, written to queues_managed.conf and reloaded when Asterisk's config path is known);
supervisors only look; agents and other sites' forms are kept out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.channels.telephony.queueconf import LiveQueueSettings, QueueApplier, sections
from callcenter.channels.telephony.routing import QueueNumbers
from callcenter.channels.telephony.state import QueueSettings
from callcenter.config import Settings
from callcenter.health import HealthRegistry
from callcenter.models import AuditLog, Queue, QueueMember, User
from callcenter.web.app import create_app
from callcenter.web.keys import WALLBOARD
from callcenter.web.views.queues_admin import LIVE_QUEUES, QUEUE_APPLIER, QUEUE_NUMBERS
from tests.web.conftest import SESSION_KEY
from tests.web.helpers import HTML, Visitor

SignIn = Callable[[str], Awaitable[Visitor]]
NEW = {
    "name": "billing",
    "display_name": "Оплата",
    "service_level_seconds": "30",
    "strategy": "leastrecent",
    "ring_timeout_seconds": "20",
    "wrapup_seconds": "",
    "max_callers": "5",
    "member": "PJSIP/1001",
    "penalty:PJSIP/1001": "2",
}


class FakeWallboard:
    """What the page reads from the live wallboard: queues with callers, agents' queues."""

    def __init__(self, waiting: Mapping[str, int]) -> None:
        self.waiting = dict(waiting)

    def snapshot(self) -> dict[str, Any]:
        queues = [{"name": name, "waiting": n} for name, n in self.waiting.items()]
        agent = {"interface": "PJSIP/1002", "name": "Boris", "queues": list(self.waiting)}
        return {"queues": queues, "agents": [agent]}


class Response:
    def __init__(self, ok: bool, message: str = "") -> None:
        self.ok, self.headers = ok, {"Message": message}


class FakeAmi:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.actions: list[dict[str, str]] = []

    async def send_action(self, action: Mapping[str, str], **_: Any) -> Response:
        self.actions.append(dict(action))
        return Response(self.ok, "" if self.ok else "No such queue")


@pytest.fixture
async def site(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    staff: dict[str, User],
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[Callable[[str], Awaitable[Visitor]]]]]:
    """Start the app with a wallboard and/or an applier, then sign staff in to it."""
    started: list[TestServer] = []
    visitors: list[Visitor] = []

    async def start(
        wallboard: Any = None, applier: Any = None, live: Any = None, numbers: Any = None
    ) -> Callable[[str], Awaitable[Visitor]]:
        settings = Settings(database_url=database_url, session_key=SESSION_KEY, data_dir=tmp_path)
        app = create_app(settings, health=HealthRegistry())
        if wallboard is not None:
            app[WALLBOARD] = wallboard
        if applier is not None:
            app[QUEUE_APPLIER] = applier
        if live is not None:
            app[LIVE_QUEUES] = live
        if numbers is not None:
            app[QUEUE_NUMBERS] = numbers
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        started.append(server)

        async def sign_in(name: str) -> Visitor:
            who = Visitor(server.make_url("/"))
            visitors.append(who)
            assert (await who.login(name)).status == 303
            return who

        return sign_in

    yield start
    for who in visitors:
        await who.close()
    for server in started:
        await server.close()


async def _queue(sessions: async_sessionmaker[AsyncSession], name: str) -> Queue | None:
    async with sessions() as db:
        return (await db.scalars(select(Queue).where(Queue.name == name))).one_or_none()


async def _audit(sessions: async_sessionmaker[AsyncSession]) -> list[AuditLog]:
    async with sessions() as db:
        query = select(AuditLog).where(AuditLog.action.like("queue.%")).order_by(AuditLog.id)
        return list(await db.scalars(query))


async def _page(who: Visitor, path: str, status: int = 200) -> str:
    response = await who.get(path, headers=HTML)
    assert response.status == status, (path, response.status)
    return await response.text()


@pytest.fixture
async def support(sessions: async_sessionmaker[AsyncSession]) -> Queue:
    """The shipped queue as installs have it: a row with its service level, not managed."""
    async with sessions() as db, db.begin():
        queue = Queue(name="support", display_name="Поддержка", service_level_seconds=20)
        db.add(queue)
    return queue


async def test_admin_creates_a_queue_with_members_and_it_is_audited(
    signed_in: SignIn, sessions: async_sessionmaker[AsyncSession], support: Queue
) -> None:
    root = await signed_in("root")
    page = await _page(root, "/admin/queues")
    assert 'href="/admin/queues"' in page and 'id="new-queue"' in page
    assert 'data-queue="support"' in page and "queues.conf" in page
    assert "PJSIP/1001" in page and "PJSIP/1002" in page  # the agents' phones to choose from
    response = await root.post_form("/admin/queues", NEW)
    assert response.status == 303
    queue = await _queue(sessions, "billing")
    assert queue is not None and queue.managed
    assert (queue.display_name, queue.strategy, queue.ring_timeout_seconds) == (
        "Оплата",
        "leastrecent",
        20,
    )
    assert (queue.service_level_seconds, queue.wrapup_seconds, queue.max_callers) == (30, None, 5)
    assert [(m.interface, m.penalty, m.member_name) for m in queue.members] == [
        ("PJSIP/1001", 2, "Anna")
    ]
    assert response.headers["Location"] == f"/admin/queues/{queue.id}?notice=not_applied"
    shown = await _page(root, response.headers["Location"])
    assert "queues_config_path" in shown  # says it was saved but not applied
    [entry] = await _audit(sessions)
    assert (entry.action, entry.actor, entry.target_id) == ("queue.create", "root", "billing")
    assert entry.details["members"] == ["PJSIP/1001:2"]


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"name": "sales]\n[evil"}, "name", "Имя: латинские строчные буквы"),
        ({"name": "Billing"}, "name", "Имя: латинские строчные буквы"),
        ({"name": "general"}, "name", "Имя: латинские строчные буквы"),
        ({"name": "sales"}, "name", "уже есть"),  # in the shipped queues.conf
        ({"name": "support"}, "name", "уже есть"),  # in the table
        ({"strategy": "ringall\nmaxlen=0"}, "strategy", "Неизвестная стратегия"),
        ({"ring_timeout_seconds": "0"}, "ring_timeout_seconds", "вне допустимых"),
        ({"ring_timeout_seconds": "1\n2"}, "ring_timeout_seconds", "целое число"),
        ({"wrapup_seconds": "99999"}, "wrapup_seconds", "вне допустимых"),
        ({"max_callers": "-1"}, "max_callers", "вне допустимых"),
        ({"service_level_seconds": "abc"}, "service_level_seconds", "целое число"),
        ({"display_name": "a\nb"}, "display_name", "одна строка"),
        ({"member": "PJSIP/1001\nmember => PJSIP/6666"}, "members", "указан неверно"),
        ({"penalty:PJSIP/1001": "500"}, "members", "вне допустимых"),
        ({"member": "PJSIP/1004"}, "members", "указан неверно"),  # no staff account's phone
        ({"inbound_number": "12"}, "inbound_number", "от 3 до 15 цифр"),
        ({"inbound_number": "1" * 16}, "inbound_number", "от 3 до 15 цифр"),
        ({"inbound_number": "7495;1234"}, "inbound_number", "от 3 до 15 цифр"),
        ({"inbound_number": "+7 495 ABC"}, "inbound_number", "от 3 до 15 цифр"),
        ({"inbound_number": "++74951234567"}, "inbound_number", "от 3 до 15 цифр"),
    ],
)
async def test_bad_input_is_refused_with_the_error_next_to_its_field(
    signed_in: SignIn,
    sessions: async_sessionmaker[AsyncSession],
    support: Queue,
    changes: dict[str, str],
    field: str,
    text: str,
) -> None:
    root = await signed_in("root")
    response = await root.post_form("/admin/queues", {**NEW, **changes})
    assert response.status == 400
    page = await response.text()
    error = re.search(rf'id="error-{field}"[^>]*>([^<]*)<', page)
    assert error and text in error[1], page
    async with sessions() as db:
        assert list(await db.scalars(select(Queue.name))) == ["support"]
        assert list(await db.scalars(select(QueueMember))) == []
    assert await _audit(sessions) == []


async def test_a_supervisor_sees_the_queues_but_cannot_change_them(
    signed_in: SignIn, sessions: async_sessionmaker[AsyncSession], support: Queue
) -> None:
    sveta = await signed_in("sveta")
    page = await _page(sveta, "/admin/queues")
    assert 'data-queue="support"' in page and 'href="/admin/queues"' in page
    assert 'id="new-queue"' not in page
    shown = await _page(sveta, f"/admin/queues/{support.id}")
    assert 'id="edit-queue"' not in shown and 'id="settings"' in shown
    refused = [
        await sveta.post_form("/admin/queues", NEW),
        await sveta.post_form(f"/admin/queues/{support.id}", {"service_level_seconds": "5"}),
        await sveta.post_form(f"/admin/queues/{support.id}/delete", {}),
    ]
    assert [r.status for r in refused] == [403, 403, 403]
    assert (await _queue(sessions, "support")).service_level_seconds == 20  # type: ignore[union-attr]
    assert await _queue(sessions, "billing") is None


async def test_agents_and_strangers_are_kept_out(
    signed_in: SignIn, visitor: Callable[[], Visitor], support: Queue
) -> None:
    anna = await signed_in("anna")
    assert (await anna.get("/admin/queues", headers=HTML)).status == 403
    assert (await anna.get(f"/admin/queues/{support.id}", headers=HTML)).status == 403
    assert (await anna.post_form("/admin/queues", NEW)).status == 403
    stranger = visitor()
    assert (await stranger.get("/admin/queues", headers=HTML)).status == 302


async def test_a_form_without_the_sessions_csrf_token_changes_nothing(
    signed_in: SignIn, sessions: async_sessionmaker[AsyncSession], support: Queue
) -> None:
    root, other = await signed_in("root"), await signed_in("sveta")
    missing = await root.post("/admin/queues", data=NEW)
    stolen = await root.post("/admin/queues", data={**NEW, "_csrf": other.csrf})
    assert (missing.status, stolen.status) == (403, 403)
    assert await _queue(sessions, "billing") is None


async def test_admin_edits_a_managed_queue_and_the_members_follow_the_form(
    signed_in: SignIn, sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await signed_in("root")
    await root.post_form("/admin/queues", NEW)
    queue = await _queue(sessions, "billing")
    assert queue is not None
    page = await _page(root, f"/admin/queues/{queue.id}")
    assert 'value="PJSIP/1001" checked' in page
    assert page.count('name="member" value="PJSIP/1001"') == 1  # a staff phone, listed once
    edit = {
        "display_name": "Оплата и счета",
        "service_level_seconds": "15",
        "abandoned_in_service_level": "1",
        "strategy": "ringall",
        "ring_timeout_seconds": "10",
        "wrapup_seconds": "0",
        "max_callers": "0",
        "member": "PJSIP/1002",
        "penalty:PJSIP/1002": "1",
    }
    response = await root.post_form(f"/admin/queues/{queue.id}", edit)
    assert response.status == 303
    saved = await _queue(sessions, "billing")
    assert saved is not None
    assert (saved.strategy, saved.ring_timeout_seconds, saved.wrapup_seconds) == ("ringall", 10, 0)
    assert saved.abandoned_in_service_level and saved.service_level_seconds == 15
    assert [(m.interface, m.penalty, m.member_name) for m in saved.members] == [
        ("PJSIP/1002", 1, "Boris")
    ]
    bad = await root.post_form(f"/admin/queues/{queue.id}", {**edit, "strategy": "roundrobin"})
    assert bad.status == 400 and 'id="error-strategy"' in await bad.text()
    assert 'value="PJSIP/1002" checked' in await bad.text()  # the form keeps what was posted
    assert (await _queue(sessions, "billing")).strategy == "ringall"  # type: ignore[union-attr]
    assert [e.action for e in await _audit(sessions)] == ["queue.create", "queue.update"]


async def test_a_queues_conf_queue_changes_only_its_service_level_here(
    signed_in: SignIn, sessions: async_sessionmaker[AsyncSession], support: Queue
) -> None:
    root = await signed_in("root")
    page = await _page(root, f"/admin/queues/{support.id}")
    assert 'name="strategy"' not in page and 'id="delete-queue"' not in page
    form = {"display_name": "Поддержка 24/7", "service_level_seconds": "40", "strategy": "random"}
    assert (await root.post_form(f"/admin/queues/{support.id}", form)).status == 303
    saved = await _queue(sessions, "support")
    assert saved is not None and not saved.managed
    assert (saved.display_name, saved.service_level_seconds) == ("Поддержка 24/7", 40)
    assert saved.strategy == "rrmemory"  # not this screen's to change
    refused = await root.post_form(f"/admin/queues/{support.id}/delete", {})
    assert refused.status == 400 and 'id="error-delete"' in await refused.text()
    assert await _queue(sessions, "support") is not None


async def test_live_queues_show_callers_and_members_and_a_busy_queue_is_not_deleted(
    site: Callable[..., Awaitable[SignIn]], sessions: async_sessionmaker[AsyncSession]
) -> None:
    wallboard = FakeWallboard({"overflow": 1})
    root = await (await site(wallboard=wallboard))("root")
    taken = await root.post_form("/admin/queues", {**NEW, "name": "overflow"})
    assert taken.status == 400 and 'id="error-name"' in await taken.text()  # Asterisk has it
    assert (await root.post_form("/admin/queues", NEW)).status == 303
    wallboard.waiting["billing"] = 0  # Asterisk loaded it
    page = await _page(root, "/admin/queues")
    assert re.search(r'data-queue="overflow" class="live-only">.*?только в Asterisk', page, re.S)
    assert "Boris" in page
    queue = await _queue(sessions, "billing")
    assert queue is not None
    wallboard.waiting["billing"] = 2
    refused = await root.post_form(f"/admin/queues/{queue.id}/delete", {})
    assert refused.status == 409 and "ждут звонящие" in await refused.text()
    assert await _queue(sessions, "billing") is not None
    wallboard.waiting["billing"] = 0
    deleted = await root.post_form(f"/admin/queues/{queue.id}/delete", {})
    assert deleted.status == 303 and await _queue(sessions, "billing") is None
    async with sessions() as db:
        assert list(await db.scalars(select(QueueMember))) == []
    assert [e.action for e in await _audit(sessions)] == ["queue.create", "queue.delete"]


async def test_saving_writes_the_managed_file_and_reloads_that_queue(
    site: Callable[..., Awaitable[SignIn]],
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "queues.conf").write_text("[general]\n[queue-defaults](!)\n[hotline]\n")
    ami = FakeAmi()
    root = await (await site(applier=QueueApplier(etc / "queues_managed.conf", [ami])))("root")
    taken = await root.post_form("/admin/queues", {**NEW, "name": "hotline"})
    assert taken.status == 400  # defined in the queues.conf Asterisk reads
    response = await root.post_form("/admin/queues", NEW)
    assert response.headers["Location"].endswith("?notice=applied")
    written = (etc / "queues_managed.conf").read_text()
    assert sections(written) == {"billing"} and "member => PJSIP/1001,2,Anna" in written
    assert ami.actions == [
        {"Action": "QueueReload", "Queue": "billing", "Members": "yes", "Parameters": "yes"}
    ]
    ami.ok = False
    queue = await _queue(sessions, "billing")
    assert queue is not None
    failed = await root.post_form(f"/admin/queues/{queue.id}", {**NEW, "strategy": "linear"})
    assert failed.headers["Location"].endswith("?notice=apply_failed")
    assert "strategy = linear" in (etc / "queues_managed.conf").read_text()
    ami.ok = True
    await root.post_form(f"/admin/queues/{queue.id}/delete", {})
    assert sections((etc / "queues_managed.conf").read_text()) == set()
    assert ami.actions[-1]["Queue"] == "billing"


async def test_english_texts(signed_in: SignIn, sessions: async_sessionmaker[AsyncSession]) -> None:
    root = await signed_in("root")
    await root.post_form("/me/language", {"language": "en"})
    response = await root.post_form("/admin/queues", {**NEW, "name": "Bad Name"})
    assert "lower-case Latin letters" in await response.text()
    assert "Static members" in await _page(root, "/admin/queues")


class FakeState:
    def __init__(self) -> None:
        self.changes: list[tuple[str, QueueSettings | None]] = []

    def configure_queue(self, name: str, settings: QueueSettings | None) -> None:
        self.changes.append((name, settings))


async def test_saved_service_levels_reach_the_live_state_at_once(
    site: Callable[..., Awaitable[SignIn]],
    sessions: async_sessionmaker[AsyncSession],
    support: Queue,
) -> None:
    state = FakeState()
    root = await (await site(live=LiveQueueSettings([state])))("root")
    await root.post_form("/admin/queues", {**NEW, "wrapup_seconds": "9"})
    form = {"service_level_seconds": "40", "abandoned_in_service_level": "1"}
    await root.post_form(f"/admin/queues/{support.id}", form)
    refused = await root.post_form(f"/admin/queues/{support.id}", {"service_level_seconds": "0"})
    assert refused.status == 400
    billing = await _queue(sessions, "billing")
    assert billing is not None
    await root.post_form(f"/admin/queues/{billing.id}/delete", {})
    assert state.changes == [
        ("billing", QueueSettings(30, False, 9)),
        ("support", QueueSettings(40, True, 0)),
        ("billing", None),
    ]


async def test_a_staff_name_with_config_syntax_is_written_safely(
    site: Callable[..., Awaitable[SignIn]],
    sessions: async_sessionmaker[AsyncSession],
    staff: dict[str, User],
    tmp_path: Path,
) -> None:
    async with sessions() as db, db.begin():
        anna = await db.get(User, staff["anna"].id)
        assert anna is not None
        anna.display_name = "Анна, старшая\n[general]"
    ami = FakeAmi()
    root = await (await site(applier=QueueApplier(tmp_path / "queues_managed.conf", [ami])))("root")
    response = await root.post_form("/admin/queues", NEW)
    assert response.headers["Location"].endswith("?notice=applied")
    written = (tmp_path / "queues_managed.conf").read_text()
    assert sections(written) == {"billing"}
    assert "member => PJSIP/1001,2,Анна старшая general" in written.splitlines()


async def test_an_unwritable_config_directory_is_reported_not_a_crash(
    site: Callable[..., Awaitable[SignIn]], tmp_path: Path
) -> None:
    missing_parent = tmp_path / "file-not-dir"
    missing_parent.write_text("")
    ami = FakeAmi()
    applier = QueueApplier(missing_parent / "queues_managed.conf", [ami])
    root = await (await site(applier=applier))("root")
    response = await root.post_form("/admin/queues", NEW)
    assert response.headers["Location"].endswith("?notice=apply_failed")
    assert ami.actions == []  # nothing reloaded from a file that was not written


async def test_a_member_whose_account_was_deactivated_may_stay_but_not_be_added_again(
    signed_in: SignIn, sessions: async_sessionmaker[AsyncSession], staff: dict[str, User]
) -> None:
    root = await signed_in("root")
    await root.post_form("/admin/queues", NEW)
    queue = await _queue(sessions, "billing")
    assert queue is not None
    async with sessions() as db, db.begin():
        anna = await db.get(User, staff["anna"].id)
        assert anna is not None
        anna.active = False
    page = await _page(root, f"/admin/queues/{queue.id}")
    assert 'value="PJSIP/1001" checked' in page  # still listed, though no longer a choice
    kept = await root.post_form(f"/admin/queues/{queue.id}", {**NEW, "max_callers": "3"})
    assert kept.status == 303
    saved = await _queue(sessions, "billing")
    assert saved is not None and [m.interface for m in saved.members] == ["PJSIP/1001"]
    other = await root.post_form("/admin/queues", {**NEW, "name": "vip"})  # anna's phone
    assert other.status == 400 and 'id="error-members"' in await other.text()


async def test_a_queues_inbound_number_is_stored_as_digits_unique_and_routes_at_once(
    site: Callable[..., Awaitable[SignIn]],
    sessions: async_sessionmaker[AsyncSession],
    support: Queue,
) -> None:
    numbers = QueueNumbers(sessions, interval=3600)  # only a save reloads it here
    root = await (await site(numbers=numbers))("root")
    created = await root.post_form("/admin/queues", {**NEW, "inbound_number": "+7 (495) 765-43-21"})
    assert created.status == 303
    billing = await _queue(sessions, "billing")
    assert billing is not None and billing.inbound_number == "74957654321"
    assert numbers.queue_for("+74957654321") == "billing"
    page = await _page(root, "/admin/queues")
    assert "<code>74957654321</code>" in page
    [entry] = await _audit(sessions)
    assert entry.details["inbound_number"] == "74957654321"

    # One number, one queue: refused on a new queue and on another queue's page.
    taken = await root.post_form(
        "/admin/queues", {**NEW, "name": "refunds", "inbound_number": "74957654321"}
    )
    assert taken.status == 400 and "уже у другой очереди" in await taken.text()
    assert await _queue(sessions, "refunds") is None
    form = {"display_name": "Поддержка", "service_level_seconds": "20"}
    refused = await root.post_form(
        f"/admin/queues/{support.id}", {**form, "inbound_number": "+74957654321"}
    )
    assert refused.status == 400 and "уже у другой очереди" in await refused.text()
    # A queue of queues.conf takes a number too; the queue's own number is no conflict.
    own = {**NEW, "inbound_number": "74957654321"}
    assert (await root.post_form(f"/admin/queues/{billing.id}", own)).status == 303
    saved = await root.post_form(f"/admin/queues/{support.id}", {**form, "inbound_number": "8800"})
    assert saved.status == 303
    assert numbers.queue_for("8800") == "support"

    # A blank field takes the number away: its calls go to the default queue again.
    cleared = await root.post_form(f"/admin/queues/{billing.id}", {**NEW, "inbound_number": ""})
    assert cleared.status == 303
    billing = await _queue(sessions, "billing")
    assert billing is not None and billing.inbound_number is None
    assert numbers.queue_for("74957654321") == ""
